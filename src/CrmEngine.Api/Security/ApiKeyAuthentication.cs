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
/// The key itself is never logged; a refusal is logged with the key's name when the key is known.
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

    internal const string RefusalItem = "crm.auth.refusal";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = PresentedKey(Request);
        if (presented is null)
        {
            return Task.FromResult(Refuse("no API key was sent: send it in the X-Api-Key header (or Authorization: ApiKey <key>)"));
        }

        var (key, refusal) = keys.Authenticate(presented);
        switch (refusal)
        {
            case KeyRefusal.Unknown:
                Logger.LogInformation("API request to {Path} refused: unknown API key", Request.Path);
                return Task.FromResult(Refuse("the API key is not valid"));
            case KeyRefusal.Revoked:
                Logger.LogInformation("API request to {Path} refused: key {KeyName} is revoked", Request.Path, key!.Name);
                return Task.FromResult(Refuse($"the API key '{key.Name}' was revoked"));
            case KeyRefusal.Expired:
                Logger.LogInformation("API request to {Path} refused: key {KeyName} expired", Request.Path, key!.Name);
                return Task.FromResult(Refuse($"the API key '{key.Name}' expired at {key.Expires:O}"));
        }

        var identity = new ClaimsIdentity(
        [
            new Claim(ClaimTypes.Name, key!.Name),
            new Claim(KeyIdClaim, key.Id),
            new Claim(ScopeClaim, key.Scope.ToString().ToLowerInvariant()),
        ], SchemeName, ClaimTypes.Name, null);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
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
            var why = context.Items[ApiKeyAuthenticationHandler.RefusalItem] as string ?? "an API key is required";
            context.Response.Headers.WWWAuthenticate = $"{ApiKeyAuthenticationHandler.SchemeName} header=\"{ApiKeyAuthenticationHandler.HeaderName}\"";
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
        return ApiProblems.Build(StatusCodes.Status403Forbidden, "Forbidden",
            $"this needs an API key with the '{name}' scope; the key '{user.Identity?.Name}' has '{ApiCaller.ScopeOf(user)?.ToString().ToLowerInvariant() ?? "none"}'",
            extensions: new Dictionary<string, object?> { ["requiredScope"] = name });
    }
}
