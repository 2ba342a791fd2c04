using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Api;

/// <summary>
/// Access denials of the API: 403 problems that name the missing privilege (<c>customer:write</c>,
/// <c>customer.overdueAmount:read</c>) in <c>detail</c> and in <c>missingPrivilege</c>, logged with the user, entity, id
/// and privilege — never a field value.
/// </summary>
public static class ApiAccess
{
    /// <summary>The extension member of a 403 problem that names the missing privilege.</summary>
    public const string MissingPrivilege = "missingPrivilege";

    /// <summary>403 for a denied decision (logged). <paramref name="id"/> may be null for a query or a create.</summary>
    public static IResult Forbidden(HttpContext context, string entity, string? id, AccessDecision decision)
    {
        ArgumentNullException.ThrowIfNull(context);
        var missing = decision.Missing ?? entity + ":?";
        LogDenied(context, entity, id, missing);
        return ApiProblems.Result(Problem(missing, decision.ToString()));
    }

    /// <summary>
    /// 404 for a record the caller may not read (id guessing must not tell that it exists): the same answer as for an id
    /// nobody has. The denial is still logged.
    /// </summary>
    public static IResult NotFound(HttpContext context, string entity, string id, AccessDecision decision)
    {
        ArgumentNullException.ThrowIfNull(context);
        LogDenied(context, entity, id, decision.Missing ?? entity + ":read");
        return ApiProblems.Result(ApiProblems.NotFound(entity, id));
    }

    internal static ProblemDetails Problem(string missing, string detail) =>
        ApiProblems.Build(StatusCodes.Status403Forbidden, ApiProblems.Title(403), detail,
            [new ApiFieldError(WriteEnforcement.AccessField, detail)],
            new Dictionary<string, object?> { [MissingPrivilege] = missing });

    /// <summary>The access refusal inside a store error (write enforcement), or null.</summary>
    internal static ValidationError? RefusalOf(Exception error) =>
        error is ValidationException v ? v.Errors.FirstOrDefault(e => e.Field == WriteEnforcement.AccessField) : null;

    /// <summary>"denied (customer:write): ..." → "customer:write".</summary>
    internal static string MissingOf(string message)
    {
        const string prefix = "denied (";
        var end = message.IndexOf("):", StringComparison.Ordinal);
        return message.StartsWith(prefix, StringComparison.Ordinal) && end > prefix.Length ? message[prefix.Length..end] : "access";
    }

    /// <summary>Logs a write the store refused for access (called where store errors become problems).</summary>
    internal static void LogIfRefused(HttpContext context, Exception error, string? id = null)
    {
        if (RefusalOf(error) is { } refusal)
        {
            LogDenied(context, (error as ValidationException)?.Entity ?? "record", id ?? context.Request.Path.Value, MissingOf(refusal.Message));
        }
    }

    internal static void LogDenied(HttpContext context, string entity, string? id, string missing)
    {
        var logger = context.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("CrmEngine.Api.Access");
        logger?.LogWarning("Access denied: user {User} {Method} {Entity} {Id} needs {Privilege}",
            context.User.Identity?.IsAuthenticated == true ? context.CrmUserId() : "(anonymous)", context.Request.Method, entity, id ?? "-", missing);
    }
}
