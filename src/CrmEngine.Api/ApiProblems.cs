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
    public static IResult? ForStoreError(Exception error) => Map(error) is { } p
        ? TypedResults.Json(p, ApiJson.Options, ContentType, p.Status ?? 500)
        : null;

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

    internal static ProblemDetails? Map(Exception error) => error switch
    {
        ValidationException v => Build(StatusCodes.Status422UnprocessableEntity, "Validation failed",
            v.Errors.Count > 0 ? string.Join("; ", v.Errors.Select(e => $"{e.Field}: {e.Message}")) : v.Message,
            v.Errors.Select(e => new ApiFieldError(e.Field, e.Message)).ToList()),
        ConcurrencyException c => Build(StatusCodes.Status412PreconditionFailed, "Version conflict", c.Message,
            extensions: new Dictionary<string, object?> { ["currentVersion"] = c.ActualVersion }),
        EntityNotFoundException n => Build(StatusCodes.Status404NotFound, "Not found", n.Message),
        PipelineDepthException d => Build(StatusCodes.Status409Conflict, "Write chain too deep", d.Message,
            extensions: new Dictionary<string, object?> { ["chain"] = d.Chain }),
        _ => null,
    };

    internal static string Title(int statusCode) => statusCode switch
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
