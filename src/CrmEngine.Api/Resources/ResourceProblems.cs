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
    public static IResult Invalid(string entity, IEnumerable<(string Field, string Message)> errors)
    {
        var list = errors.Select(e => new ApiFieldError(e.Field, e.Message)).ToList();
        return ApiProblems.Create(StatusCodes.Status422UnprocessableEntity, "Validation failed",
            $"The {entity} was not stored: " + string.Join("; ", list.Select(e => $"{e.Field}: {e.Message}")), list);
    }

    public static IResult Invalid(string entity, string field, string message) => Invalid(entity, [(field, message)]);

    public static IResult NotFound(string entity, string id, IReadOnlyDictionary<string, object?>? extensions = null) =>
        ApiProblems.Create(StatusCodes.Status404NotFound, "Not found", $"There is no {entity} '{id}'.", extensions: extensions);

    /// <summary>428: a write that replaces a record must say which version it read.</summary>
    public static IResult PreconditionRequired(string entity) =>
        ApiProblems.Create(StatusCodes.Status428PreconditionRequired, "Precondition required",
            $"Send the {entity}'s version in an If-Match header (the ETag of your last read, for example If-Match: \"3\"), so that a change made meanwhile is not overwritten.",
            [new ApiFieldError("If-Match", "is required")]);

    /// <summary>412: the version sent is no longer current; the current one is in the problem and the ETag header.</summary>
    public static IResult PreconditionFailed(HttpContext context, string entity, string id, long currentVersion)
    {
        context.Response.Headers.ETag = ETags.Format(currentVersion);
        return ApiProblems.Create(StatusCodes.Status412PreconditionFailed, "Version conflict",
            $"{entity} '{id}' was changed meanwhile: it is now at version {currentVersion}. Read it again and apply your change to that version.",
            [new ApiFieldError("If-Match", $"does not name the current version ({currentVersion})")],
            new Dictionary<string, object?> { ["currentVersion"] = currentVersion });
    }

    public static IResult Conflict(string detail, string? field = null) =>
        ApiProblems.Create(StatusCodes.Status409Conflict, "Conflict", detail,
            field is null ? null : [new ApiFieldError(field, "is already taken")]);

    public static IResult Problem(int statusCode, string title, string detail) => ApiProblems.Create(statusCode, title, detail);

    /// <summary>
    /// A store refusal as a problem. Field names in validation errors are the store's (PascalCase, for
    /// example <c>Contacts[0].Email</c>); they are shown as the JSON names (<c>contacts[0].email</c>).
    /// </summary>
    public static IResult FromStore(HttpContext context, string entity, StoreException error, Func<string, string>? renameField = null)
    {
        switch (error)
        {
            case ValidationException invalid:
                return Invalid(entity, invalid.Errors.Select(e => (renameField?.Invoke(JsonFieldName(e.Field)) ?? JsonFieldName(e.Field), e.Message)));
            case ConcurrencyException conflict when conflict.EntityId.Length > 0:
                return PreconditionFailed(context, entity, conflict.EntityId, conflict.ActualVersion);
            case ConcurrencyException conflict:
                return Conflict(conflict.Message);
            case EntityNotFoundException missing:
                return NotFound(entity, missing.EntityId);
            case PipelineDepthException depth:
                return ApiProblems.Create(StatusCodes.Status409Conflict, "Write chain too deep", depth.Message + " Nothing was stored.",
                    extensions: new Dictionary<string, object?> { ["chain"] = depth.Chain });
            case HandlerFailedException failed:
                return Problem(StatusCodes.Status500InternalServerError, "A rule or plugin failed while handling the write",
                    $"{failed.Message} Nothing was stored.");
            default:
                return Problem(StatusCodes.Status503ServiceUnavailable, "The store could not take the write", error.Message);
        }
    }

    /// <summary>"Contacts[0].Email" → "contacts[0].email"; keys inside brackets keep their case.</summary>
    internal static string JsonFieldName(string storeField)
    {
        var chars = storeField.ToCharArray();
        var atStart = true;
        var depth = 0;
        for (var i = 0; i < chars.Length; i++)
        {
            switch (chars[i])
            {
                case '[': depth++; break;
                case ']': depth--; break;
                case '.': atStart = depth == 0; continue;
            }

            if (atStart && depth == 0 && char.IsUpper(chars[i]))
            {
                chars[i] = char.ToLowerInvariant(chars[i]);
            }

            atStart = false;
        }

        return new string(chars);
    }
}
