using System.Security.Claims;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrmEngine.Abstractions.Http;
using CrmEngine.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace CrmEngine.Api.Security;

/// <summary>
/// <c>Api:Jwt</c>: bearer tokens from an OpenID Connect provider. Off while <see cref="Issuer"/> is empty. The token's
/// <see cref="UserClaim"/> names the CrmEngine user it acts as; <see cref="ScopeClaim"/> (optional) narrows it.
/// </summary>
public sealed class ApiJwtOptions
{
    /// <summary>The issuer tokens must carry (<c>iss</c>), e.g. <c>https://login.example.com/realms/crm</c>. Empty: tokens are not accepted.</summary>
    public string? Issuer { get; set; }

    /// <summary>The audience tokens must carry (<c>aud</c>), e.g. <c>crm-api</c>.</summary>
    public string? Audience { get; set; }

    /// <summary>OpenID Connect discovery: the provider's signing keys are read from <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    public string? Authority { get; set; }

    /// <summary>Only with <see cref="Authority"/>: false allows an http:// discovery address (a test provider on loopback).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Files with the provider's public signing keys (PEM public key or certificate, or a JWKS JSON file); relative to the content root.</summary>
    public List<string> SigningKeys { get; set; } = [];

    /// <summary>The claim whose value is the user id (<c>preferred_username</c>, <c>oid</c>, <c>sub</c>, <c>email</c> ...).</summary>
    public string UserClaim { get; set; } = "preferred_username";

    /// <summary>
    /// Optional: the claim with the token's scopes (space separated or repeated), e.g. <c>scope</c> or <c>scp</c>. A token then
    /// acts with the highest of <c>{ScopePrefix}read|write|admin</c> it has, and with none of them it may do nothing.
    /// Not set: a token has the user's full rights (the roles decide).
    /// </summary>
    public string? ScopeClaim { get; set; }

    /// <summary>What scope values start with (default <c>crm.</c>: <c>crm.read</c>, <c>crm.write</c>, <c>crm.admin</c>).</summary>
    public string ScopePrefix { get; set; } = "crm.";

    /// <summary>
    /// When <see cref="UserClaim"/> is <c>email</c>: the token must also carry <c>email_verified: true</c>, since a provider
    /// that lets people register or change an address would otherwise let them name anyone's account. Set false only for a
    /// provider that vouches for every address it issues but does not send the claim (the user then answers for it).
    /// </summary>
    public bool RequireVerifiedEmail { get; set; } = true;

    /// <summary>Clock difference tolerated for <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(1);

    public bool IsEnabled => !string.IsNullOrWhiteSpace(Issuer);
}

/// <summary>Checks <c>Api:Jwt</c> at start (beside the other Api checks); a bad value names its key.</summary>
internal sealed class ApiJwtOptionsValidator : IValidateOptions<ApiOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiOptions options)
    {
        var failures = options.Enabled ? Problems(options.Jwt).ToList() : [];
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static IEnumerable<string> Problems(ApiJwtOptions o)
    {
        if (!o.IsEnabled)
        {
            if (!string.IsNullOrWhiteSpace(o.Audience) || !string.IsNullOrWhiteSpace(o.Authority) || o.SigningKeys.Count > 0)
            {
                yield return "Api:Jwt:Issuer is required when Api:Jwt is configured (the iss value tokens carry)";
            }

            yield break;
        }

        if (string.IsNullOrWhiteSpace(o.Audience))
        {
            yield return "Api:Jwt:Audience is required (the aud value tokens carry, for example crm-api)";
        }

        if (string.IsNullOrWhiteSpace(o.Authority) && o.SigningKeys.Count == 0)
        {
            yield return "Api:Jwt needs Authority (OpenID Connect discovery) or SigningKeys (PEM or JWKS files)";
        }

        if (o.Authority is { Length: > 0 } a && !Uri.TryCreate(a, UriKind.Absolute, out _))
        {
            yield return $"Api:Jwt:Authority '{a}' is not an absolute address";
        }

        if (string.IsNullOrWhiteSpace(o.UserClaim))
        {
            yield return "Api:Jwt:UserClaim is empty: name the claim that holds the user id (preferred_username, oid, sub ...)";
        }

        if (o.ClockSkew < TimeSpan.Zero || o.ClockSkew > TimeSpan.FromMinutes(10))
        {
            yield return $"Api:Jwt:ClockSkew must be between 00:00:00 and 00:10:00 (was {o.ClockSkew})";
        }
    }
}

/// <summary>
/// Who the caller is, the same way for both schemes: a principal with the name, <c>crm:user</c> (when it acts as a user),
/// <c>crm:scope</c>, or — when its user may not act — <c>crm:refusal</c> and no scope (every endpoint then answers 403).
/// </summary>
internal static class CallerIdentity
{
    public static bool IsBearer(HttpRequest request) =>
        request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);

    public static bool BearerEnabled(HttpContext context) =>
        context.RequestServices.GetService<IOptions<ApiOptions>>()?.Value.Jwt.IsEnabled == true;

    /// <summary>Why <paramref name="userId"/> may not act (unknown, deactivated, a system user or a reserved id), or null when they may.</summary>
    public static async Task<string?> UserRefusalAsync(HttpContext context, string userId)
    {
        var directory = context.RequestServices.GetService<SecurityDirectory>();
        if (directory is null)
        {
            return "cannot be checked (the access model is not registered: AddCrmSecurity)";
        }

        var snapshot = await directory.SnapshotAsync(context.RequestAborted);
        if (!snapshot.Users.TryGetValue(userId, out var user))
        {
            return "does not exist (crm users list shows the users)";
        }

        return user.Deactivated ? $"is deactivated{(user.DeactivatedAt is { } at ? $" (since {at:u})" : "")}" : ReservedUsers.ActingRefusal(user);
    }

    public static ClaimsPrincipal Principal(string scheme, string name, string? userId, ApiScope? scope, string? refusal, params Claim[] extra)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name) };
        claims.AddRange(extra);
        if (userId is not null)
        {
            claims.Add(new Claim(ApiKeyAuthenticationHandler.UserClaim, userId));
        }

        if (refusal is not null)
        {
            claims.Add(new Claim(ApiKeyAuthenticationHandler.RefusalClaim, refusal));
        }
        else if (scope is { } s)
        {
            claims.Add(new Claim(ApiKeyAuthenticationHandler.ScopeClaim, s.ToString().ToLowerInvariant()));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, ClaimTypes.Name, null));
    }
}

/// <summary>
/// The API's authentication: API keys always, bearer tokens when <c>Api:Jwt</c> is configured. The header decides
/// (<c>Authorization: Bearer ...</c> → token, anything else → key), so both work side by side.
/// </summary>
internal static class ApiAuthentication
{
    /// <summary>The default scheme: forwards each request to the key or the bearer scheme.</summary>
    public const string SchemeName = "CrmCaller";

    private const string EmailClaim = "email";
    private const string EmailVerifiedClaim = "email_verified";

    /// <summary>Engine side (called by AddCrmApi): the access model, the validated <c>Api:Jwt</c> options and the security admin endpoints.</summary>
    public static void AddOptions(IServiceCollection services)
    {
        services.AddCrmSecurity();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, Endpoints.SecurityAdminEndpoints>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ApiOptions>, ApiJwtOptionsValidator>());
    }

    /// <summary>Web application side (called by ApiServer): the schemes. Signing key files are read here; a bad one fails the start naming it.</summary>
    public static void AddSchemes(IServiceCollection web, IServiceProvider engine, string contentRoot)
    {
        var jwt = engine.GetService<IOptions<ApiOptions>>()?.Value.Jwt ?? new ApiJwtOptions();
        var authentication = web.AddAuthentication(SchemeName)
            .AddPolicyScheme(SchemeName, "API key or bearer token", o => o.ForwardDefaultSelector = context =>
                jwt.IsEnabled && CallerIdentity.IsBearer(context.Request) ? JwtBearerDefaults.AuthenticationScheme : ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        if (jwt.IsEnabled)
        {
            var keys = jwt.SigningKeys.SelectMany(f => SigningKeyFile.Load(f, contentRoot)).ToList();
            authentication.AddJwtBearer(o => Configure(o, jwt, keys));
        }
    }

    private static void Configure(JwtBearerOptions o, ApiJwtOptions jwt, IReadOnlyList<SecurityKey> keys)
    {
        // Claim names stay as the provider wrote them (preferred_username, oid, scp), so UserClaim means what it says.
        o.MapInboundClaims = false;
        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidIssuer = jwt.Issuer,
            ValidateAudience = true,
            ValidAudience = jwt.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = jwt.ClockSkew,
            NameClaimType = jwt.UserClaim,
        };
        if (keys.Count > 0)
        {
            o.TokenValidationParameters.IssuerSigningKeys = keys;
        }

        if (!string.IsNullOrWhiteSpace(jwt.Authority))
        {
            o.Authority = jwt.Authority;
            o.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
        }

        o.Events = new JwtBearerEvents
        {
            OnAuthenticationFailed = context =>
            {
                var why = Describe(context.Exception, jwt);
                context.HttpContext.Items[ApiKeyAuthenticationHandler.RefusalItem] = why;
                Logger(context.HttpContext).LogInformation("API request to {Path} refused: {Why}", context.Request.Path, why);
                return Task.CompletedTask;
            },
            OnTokenValidated = context => MapUserAsync(context, jwt),
        };
    }

    /// <summary>The token is genuine: find the user it names and the scope it carries.</summary>
    private static async Task MapUserAsync(TokenValidatedContext context, ApiJwtOptions jwt)
    {
        var claims = context.Principal!;
        var userId = claims.FindFirst(jwt.UserClaim)?.Value?.Trim();
        string? refusal;
        if (string.IsNullOrEmpty(userId))
        {
            refusal = $"the bearer token has no '{jwt.UserClaim}' claim to name its user (Api:Jwt:UserClaim)";
        }
        else if (jwt.RequireVerifiedEmail && string.Equals(jwt.UserClaim, EmailClaim, StringComparison.OrdinalIgnoreCase) &&
                 !string.Equals(claims.FindFirst(EmailVerifiedClaim)?.Value, "true", StringComparison.OrdinalIgnoreCase))
        {
            refusal = $"the bearer token names user '{userId}' by e-mail (claim '{jwt.UserClaim}'), but the provider has not verified that address " +
                      $"({EmailVerifiedClaim} is not true; Api:Jwt:RequireVerifiedEmail)";
        }
        else
        {
            refusal = await CallerIdentity.UserRefusalAsync(context.HttpContext, userId) is { } why
                ? $"the bearer token names user '{userId}' (claim '{jwt.UserClaim}'), who {why}"
                : null;
        }

        if (refusal is not null)
        {
            Logger(context.HttpContext).LogWarning("API request to {Path} refused: {Why}", context.Request.Path, refusal);
        }

        var scope = ScopeOf(claims, jwt);
        context.Principal = CallerIdentity.Principal(JwtBearerDefaults.AuthenticationScheme, userId is { Length: > 0 } ? userId : "(no user)",
            userId is { Length: > 0 } ? userId : null, scope, refusal);
    }

    /// <summary>No scope claim configured: admin (the user's roles decide). Configured: the highest scope named, or none.</summary>
    internal static ApiScope? ScopeOf(ClaimsPrincipal claims, ApiJwtOptions jwt)
    {
        if (string.IsNullOrWhiteSpace(jwt.ScopeClaim))
        {
            return ApiScope.Admin;
        }

        ApiScope? best = null;
        foreach (var value in claims.FindAll(jwt.ScopeClaim).SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            if (value.StartsWith(jwt.ScopePrefix, StringComparison.OrdinalIgnoreCase)
                && Enum.TryParse<ApiScope>(value[jwt.ScopePrefix.Length..], ignoreCase: true, out var s) && Enum.IsDefined(s)
                && !int.TryParse(value[jwt.ScopePrefix.Length..], out _))
            {
                best = best is { } b && b >= s ? b : s;
            }
        }

        return best;
    }

    /// <summary>Why a token was refused, for the 401 and the log: never the token, and no provider internals.</summary>
    internal static string Describe(Exception error, ApiJwtOptions jwt) => error switch
    {
        SecurityTokenExpiredException e => $"the bearer token expired at {e.Expires:u}",
        SecurityTokenNotYetValidException e => $"the bearer token is not valid before {e.NotBefore:u}",
        SecurityTokenInvalidIssuerException => $"the bearer token was not issued by '{jwt.Issuer}' (Api:Jwt:Issuer)",
        SecurityTokenInvalidAudienceException => $"the bearer token is not for the audience '{jwt.Audience}' (Api:Jwt:Audience)",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException =>
            "the bearer token's signature does not verify with the configured signing keys",
        SecurityTokenNoExpirationException => "the bearer token has no expiry (exp)",
        SecurityTokenMalformedException => "the bearer token is not a well-formed JWT",
        _ => $"the bearer token is not valid ({error.GetType().Name})",
    };

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("CrmEngine.Api.Authentication");
}

/// <summary>Public signing keys from a file: a PEM public key (RSA or EC), a PEM certificate, or a JWKS JSON document.</summary>
internal static class SigningKeyFile
{
    public static IReadOnlyList<SecurityKey> Load(string path, string contentRoot)
    {
        var full = Path.IsPathRooted(path) ? path : Path.Combine(contentRoot, path);
        if (!File.Exists(full))
        {
            throw new InvalidOperationException($"Api:Jwt:SigningKeys: the file {full} does not exist");
        }

        var text = File.ReadAllText(full).Trim();
        try
        {
            if (text.StartsWith('{'))
            {
                var set = text.Contains("\"keys\"", StringComparison.Ordinal) ? new JsonWebKeySet(text) : new JsonWebKeySet { Keys = { new JsonWebKey(text) } };
                var keys = set.GetSigningKeys();
                return keys.Count > 0 ? keys.ToList() : throw new InvalidOperationException("it holds no signing key");
            }

            if (text.Contains("BEGIN CERTIFICATE", StringComparison.Ordinal))
            {
                return [new X509SecurityKey(X509Certificate2.CreateFromPem(text))];
            }

            // The key objects live as long as the API: the validation parameters keep them.
            var rsa = RSA.Create();
            try
            {
                rsa.ImportFromPem(text);
                return [new RsaSecurityKey(rsa)];
            }
            catch (ArgumentException)
            {
                rsa.Dispose();
                var ec = ECDsa.Create();
                ec.ImportFromPem(text);
                return [new ECDsaSecurityKey(ec)];
            }
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or InvalidOperationException or System.Text.Json.JsonException)
        {
            throw new InvalidOperationException($"Api:Jwt:SigningKeys: {full} is not a PEM public key, PEM certificate or JWKS file: {ex.Message}", ex);
        }
    }
}
