using System.Text.Json;
using CrmEngine.Abstractions.Store;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace CrmEngine.Api;

/// <summary>One offending input of a request, as listed in a problem's <c>errors</c>.</summary>
public sealed record ApiFieldError(string Field, string Message);

/// <summary>
/// RFC 7807 problem details for the API. Every error answer has <c>type</c>, <c>title</c>, <c>status</c> and
/// <c>detail</c>; input errors add <c>errors</c> (field and message for each problem) and <c>field</c> (the first one).
/// </summary>
public static class ApiProblems
{
    public const string ContentType = "application/problem+json";

    /// <summary>A problem naming the offending field, for endpoint code: <c>return ApiProblems.Field(400, "email", "is not an e-mail address");</c></summary>
    public static IResult Field(int statusCode, string field, string message) =>
        Create(statusCode, Title(statusCode), $"{field}: {message}", [new ApiFieldError(field, message)]);

    /// <summary>A problem with any number of field errors (may be empty).</summary>
    public static IResult Create(int statusCode, string title, string detail, IReadOnlyList<ApiFieldError>? errors = null,
        IReadOnlyDictionary<string, object?>? extensions = null) =>
        TypedResults.Json(Build(statusCode, title, detail, errors, extensions), ApiJson.Options, ContentType, statusCode);

    /// <summary>The problem for a store error (validation 422, version conflict 412, not found 404, depth 409), or null.</summary>
    public static IResult? ForStoreError(Exception error) => Map(error) is { } p ? Result(p) : null;

    internal static ProblemDetails Build(int statusCode, string title, string detail, IReadOnlyList<ApiFieldError>? errors = null,
        IReadOnlyDictionary<string, object?>? extensions = null)
    {
        var problem = new ProblemDetails
        {
            Type = "https://httpwg.org/specs/rfc9110.html#status." + statusCode,
            Title = title,
            Status = statusCode,
            Detail = detail,
        };
        if (errors is { Count: > 0 })
        {
            problem.Extensions["field"] = errors[0].Field;
            problem.Extensions["errors"] = errors;
        }

        foreach (var (k, v) in extensions ?? new Dictionary<string, object?>())
        {
            problem.Extensions[k] = v;
        }

        return problem;
    }

    internal static Task WriteAsync(HttpContext context, int statusCode, string title, string detail,
        IReadOnlyList<ApiFieldError>? errors = null, IReadOnlyDictionary<string, object?>? extensions = null) =>
        WriteAsync(context, Build(statusCode, title, detail, errors, extensions));

    internal static async Task WriteAsync(HttpContext context, ProblemDetails problem)
    {
        problem.Instance ??= context.Request.Path;
        context.Response.StatusCode = problem.Status ?? 500;
        context.Response.ContentType = ContentType;
        await JsonSerializer.SerializeAsync(context.Response.Body, problem, ApiJson.Options, context.RequestAborted);
    }

    /// <summary>
    /// The one mapping of store errors to problems, for endpoint code and for errors that reach the API's error
    /// middleware alike: an access refusal 403, validation 422 (fields named as in JSON: <c>Contacts[0].Email</c> → <c>contacts[0].email</c>),
    /// version conflict 412 (or 409 without a record), not found 404, depth 409, a failing rule or plugin 500; null for
    /// anything else. <paramref name="entity"/> names the record in messages (else the error's entity does);
    /// <paramref name="renameField"/> may rename JSON field names further.
    /// </summary>
    internal static ProblemDetails? Map(Exception error, string? entity = null, Func<string, string>? renameField = null) => error switch
    {
        // Write enforcement refused the caller's write: 403 naming the missing privilege (nothing was stored).
        ValidationException v when ApiAccess.RefusalOf(v) is { } refusal => ApiAccess.Problem(ApiAccess.MissingOf(refusal.Message), refusal.Message + " Nothing was stored."),
        ValidationException v when v.Errors.Count > 0 => Invalid(Named(v.Entity, entity),
            v.Errors.Select(e => new ApiFieldError(renameField?.Invoke(JsonFieldName(e.Field)) ?? JsonFieldName(e.Field), e.Message))),
        ValidationException v => Build(StatusCodes.Status422UnprocessableEntity, Title(422), v.Message),
        ConcurrencyException c when c.EntityId.Length > 0 => VersionConflict(Named(c.Entity, entity), c.EntityId, c.ActualVersion),
        ConcurrencyException c => Build(StatusCodes.Status409Conflict, Title(409), c.Message),
        EntityNotFoundException n when n.EntityId.Length > 0 => NotFound(Named(n.Entity, entity), n.EntityId),
        EntityNotFoundException n => Build(StatusCodes.Status404NotFound, Title(404), n.Message),
        PipelineDepthException d => Build(StatusCodes.Status409Conflict, "Write chain too deep", d.Message + " Nothing was stored.",
            extensions: new Dictionary<string, object?> { ["chain"] = d.Chain }),
        Core.Pipeline.HandlerFailedException f => Build(StatusCodes.Status500InternalServerError, "A rule or plugin failed while handling the write",
            $"{f.Message} Nothing was stored."),
        _ => null,
    };

    /// <summary>422: well-formed, but the record would be invalid; every offending field is listed.</summary>
    internal static ProblemDetails Invalid(string entity, IEnumerable<ApiFieldError> errors)
    {
        var list = errors.ToList();
        return Build(StatusCodes.Status422UnprocessableEntity, Title(422),
            $"The {entity} was not stored: " + string.Join("; ", list.Select(e => $"{e.Field}: {e.Message}")), list);
    }

    /// <summary>412: the version sent is no longer current; the current one is in <c>currentVersion</c>.</summary>
    internal static ProblemDetails VersionConflict(string entity, string id, long currentVersion) =>
        Build(StatusCodes.Status412PreconditionFailed, "Version conflict",
            $"{entity} '{id}' was changed meanwhile: it is now at version {currentVersion}. Read it again and apply your change to that version.",
            [new ApiFieldError("If-Match", $"does not name the current version ({currentVersion})")],
            new Dictionary<string, object?> { ["currentVersion"] = currentVersion });

    internal static ProblemDetails NotFound(string entity, string id, IReadOnlyDictionary<string, object?>? extensions = null) =>
        Build(StatusCodes.Status404NotFound, Title(404), $"There is no {entity} '{id}'.", extensions: extensions);

    /// <summary>A problem as an endpoint result.</summary>
    internal static IResult Result(ProblemDetails problem) =>
        TypedResults.Json(problem, ApiJson.Options, ContentType, problem.Status ?? 500);

    /// <summary>The endpoint's name for the record ("contact person") when it gave one, else the store's ("customer").</summary>
    private static string Named(string? fromError, string? fromEndpoint) =>
        !string.IsNullOrEmpty(fromEndpoint) ? fromEndpoint : !string.IsNullOrEmpty(fromError) ? fromError : "record";

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

    /// <summary>The title every API problem with this status carries (endpoint modules use it for their own problems).</summary>
    public static string Title(int statusCode) => statusCode switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict",
        412 => "Precondition failed",
        413 => "Request body too large",
        415 => "Unsupported media type",
        422 => "Validation failed",
        428 => "Precondition required",
        500 => "Internal server error",
        503 => "Service unavailable",
        _ => "Error",
    };
}
