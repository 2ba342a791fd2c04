using System.Security.Claims;
using System.Text.Encodings.Web;
using CrmEngine.Abstractions.Http;
using CrmEngine.Api.Keys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Api.Security;

/// <summary>
/// The <c>ApiKey</c> authentication scheme: <c>X-Api-Key: &lt;key&gt;</c> or <c>Authorization: ApiKey &lt;key&gt;</c>.
/// The key itself is never logged; a refusal is logged with the key's name when the key is known. A key bound to a user
/// carries the claim <see cref="UserClaim"/>; when that user is deactivated (or gone) the principal carries
/// <see cref="RefusalClaim"/> and no scope, so every endpoint answers 403 saying why.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string HeaderName = "X-Api-Key";
    public const string ScopeClaim = "crm:scope";
    public const string KeyIdClaim = "crm:keyid";

    /// <summary>The user id the caller acts as (keys bound to a user, bearer tokens); absent for a key without a user (sys-api).</summary>
    public const string UserClaim = "crm:user";

    /// <summary>Why an authenticated caller may do nothing (its user is deactivated or unknown); such a principal has no scope.</summary>
    public const string RefusalClaim = "crm:refusal";

    internal const string RefusalItem = "crm.auth.refusal";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = PresentedKey(Request);
        if (presented is null)
        {
            return Refuse(CallerIdentity.IsBearer(Request)
                ? "a bearer token was sent, but this API does not accept tokens (Api:Jwt is not configured): send an API key in the X-Api-Key header"
                : "no API key was sent: send it in the X-Api-Key header (or Authorization: ApiKey <key>), or a bearer token when Api:Jwt is configured");
        }

        var (key, refusal) = keys.Authenticate(presented);
        switch (refusal)
        {
            case KeyRefusal.Unknown:
                Logger.LogInformation("API request to {Path} refused: unknown API key", Request.Path);
                return Refuse("the API key is not valid");
            case KeyRefusal.Revoked:
                Logger.LogInformation("API request to {Path} refused: key {KeyName} is revoked", Request.Path, key!.Name);
                return Refuse($"the API key '{key.Name}' was revoked");
            case KeyRefusal.Expired:
                Logger.LogInformation("API request to {Path} refused: key {KeyName} expired", Request.Path, key!.Name);
                return Refuse($"the API key '{key.Name}' expired at {key.Expires:O}");
        }

        string? denied = null;
        if (key!.OwnerUserId is { } owner && await CallerIdentity.UserRefusalAsync(Context, owner) is { } why)
        {
            denied = $"the API key '{key.Name}' acts as user '{owner}', who {why}";
            Logger.LogWarning("API request to {Path} refused: key {KeyName} acts as user {UserId}, who {Why}", Request.Path, key.Name, owner, why);
        }

        var principal = CallerIdentity.Principal(SchemeName, key.Name, key.OwnerUserId, key.Scope, denied, new Claim(KeyIdClaim, key.Id));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    private AuthenticateResult Refuse(string why)
    {
        Context.Items[RefusalItem] = why;
        return AuthenticateResult.Fail(why);
    }

    internal static string? PresentedKey(HttpRequest request)
    {
        if (request.Headers.TryGetValue(HeaderName, out var header) && !string.IsNullOrWhiteSpace(header.ToString()))
        {
            return header.ToString().Trim();
        }

        var authorization = request.Headers.Authorization.ToString();
        const string prefix = "ApiKey ";
        return authorization.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && authorization.Length > prefix.Length
            ? authorization[prefix.Length..].Trim()
            : null;
    }
}

/// <summary>The caller's key grants at least <see cref="Scope"/> (admin ⊇ write ⊇ read).</summary>
internal sealed class ScopeRequirement(ApiScope scope) : AuthorizationHandler<ScopeRequirement>, IAuthorizationRequirement
{
    public ApiScope Scope { get; } = scope;

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
    {
        if (ApiCaller.ScopeOf(context.User) is { } granted && granted >= requirement.Scope)
        {
            context.Succeed(requirement);
        }

        return Task.CompletedTask;
    }
}

/// <summary>Answers 401 and 403 as problem details; 403 names the scope the endpoint needs.</summary>
internal sealed class ProblemAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Challenged)
        {
            var why = context.Items[ApiKeyAuthenticationHandler.RefusalItem] as string ?? "an API key (or a bearer token) is required";
            context.Response.Headers.WWWAuthenticate = CallerIdentity.IsBearer(context.Request) && CallerIdentity.BearerEnabled(context)
                ? "Bearer"
                : $"{ApiKeyAuthenticationHandler.SchemeName} header=\"{ApiKeyAuthenticationHandler.HeaderName}\"";
            await ApiProblems.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", why);
            return;
        }

        if (authorizeResult.Forbidden)
        {
            var needed = policy.Requirements.OfType<ScopeRequirement>().Select(r => r.Scope).DefaultIfEmpty(ApiScope.Admin).Max();
            await ApiProblems.WriteAsync(context, Forbidden(context.User, needed));
            return;
        }

        await _default.HandleAsync(next, context, policy, authorizeResult);
    }

    /// <summary>403 naming the scope needed and the one the caller's key has (also used by plugin endpoints, checked per request).</summary>
    internal static Microsoft.AspNetCore.Mvc.ProblemDetails Forbidden(ClaimsPrincipal user, ApiScope needed)
    {
        var name = needed.ToString().ToLowerInvariant();
        if (user.FindFirst(ApiKeyAuthenticationHandler.RefusalClaim)?.Value is { } refusal)
        {
            // The caller is known but its user may not act (deactivated, unknown): say so rather than talk about scopes.
            return ApiProblems.Build(StatusCodes.Status403Forbidden, "Forbidden", refusal,
                extensions: new Dictionary<string, object?> { ["requiredScope"] = name, ["user"] = user.FindFirst(ApiKeyAuthenticationHandler.UserClaim)?.Value });
        }

        var has = ApiCaller.ScopeOf(user)?.ToString().ToLowerInvariant() ?? "none";
        var detail = user.Identity?.AuthenticationType == ApiKeyAuthenticationHandler.SchemeName
            ? $"this needs an API key with the '{name}' scope; the key '{user.Identity?.Name}' has '{has}'"
            : $"this needs the '{name}' scope; the token of user '{user.Identity?.Name}' has '{has}'";
        return ApiProblems.Build(StatusCodes.Status403Forbidden, "Forbidden", detail,
            extensions: new Dictionary<string, object?> { ["requiredScope"] = name });
    }
}
