using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using Microsoft.AspNetCore.Http;

namespace CrmEngine.Api.Resources;

/// <summary>RFC 7807 problems of the resource endpoints; each names the field or header at fault.</summary>
internal static class ResourceProblems
{
    /// <summary>400: the request itself is malformed (body, query or header). <paramref name="field"/> "" means the whole body.</summary>
    public static IResult BadRequest(string field, string message) =>
        field.Length == 0
            ? ApiProblems.Create(StatusCodes.Status400BadRequest, "Bad request", message)
            : ApiProblems.Field(StatusCodes.Status400BadRequest, field, message);

    /// <summary>422: well-formed, but the record would be invalid; every offending field is listed.</summary>
    public static IResult Invalid(string entity, IEnumerable<(string Field, string Message)> errors) =>
        ApiProblems.Result(ApiProblems.Invalid(entity, errors.Select(e => new ApiFieldError(e.Field, e.Message))));

    public static IResult Invalid(string entity, string field, string message) => Invalid(entity, [(field, message)]);

    public static IResult NotFound(string entity, string id, IReadOnlyDictionary<string, object?>? extensions = null) =>
        ApiProblems.Result(ApiProblems.NotFound(entity, id, extensions));

    /// <summary>428: a write that replaces a record must say which version it read.</summary>
    public static IResult PreconditionRequired(string entity) =>
        ApiProblems.Create(StatusCodes.Status428PreconditionRequired, "Precondition required",
            $"Send the {entity}'s version in an If-Match header (the ETag of your last read, for example If-Match: \"3\"), so that a change made meanwhile is not overwritten.",
            [new ApiFieldError("If-Match", "is required")]);

    /// <summary>412: the version sent is no longer current; the current one is in the problem and the ETag header.</summary>
    public static IResult PreconditionFailed(HttpContext context, string entity, string id, long currentVersion)
    {
        context.Response.Headers.ETag = ETags.Format(currentVersion);
        return ApiProblems.Result(ApiProblems.VersionConflict(entity, id, currentVersion));
    }

    public static IResult Conflict(string detail, string? field = null) =>
        ApiProblems.Create(StatusCodes.Status409Conflict, "Conflict", detail,
            field is null ? null : [new ApiFieldError(field, "is already taken")]);

    public static IResult Problem(int statusCode, string title, string detail) => ApiProblems.Create(statusCode, title, detail);

    /// <summary>
    /// A store refusal as a problem (<see cref="ApiProblems.Map"/>: the same answer as when the error reaches the API's
    /// error middleware). Field names are the JSON ones; <paramref name="renameField"/> may rename them further.
    /// </summary>
    public static IResult FromStore(HttpContext context, string entity, StoreException error, Func<string, string>? renameField = null)
    {
        if (error is ConcurrencyException { EntityId.Length: > 0 } conflict)
        {
            context.Response.Headers.ETag = ETags.Format(conflict.ActualVersion);
        }

        ApiAccess.LogIfRefused(context, error);

        return ApiProblems.Map(error, entity, renameField) is { } problem
            ? ApiProblems.Result(problem)
            : Problem(StatusCodes.Status503ServiceUnavailable, "The store could not take the write", error.Message);
    }
}
