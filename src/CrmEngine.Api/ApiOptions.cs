using Microsoft.Extensions.Options;

namespace CrmEngine.Api;

/// <summary>The <c>Api</c> section of the configuration (validated at start; a bad value names its key).</summary>
public sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>False: no HTTP listener at all.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Where Kestrel listens, separated by <c>;</c>. Loopback by default; port 0 picks a free port (tests).
    /// An <c>https://</c> address needs <see cref="Certificate"/>.
    /// </summary>
    public string Urls { get; set; } = "http://127.0.0.1:5080";

    public ApiCertificateOptions Certificate { get; set; } = new();

    /// <summary>Bearer tokens from an OpenID Connect provider (off while <c>Api:Jwt:Issuer</c> is empty); see docs/security.md.</summary>
    public Security.ApiJwtOptions Jwt { get; set; } = new();

    /// <summary>Largest request body accepted (default 1 MiB); larger bodies get 413. An endpoint may raise its own limit.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Longest long-poll of <c>GET /api/changes?wait=</c>; larger waits are cut to this.</summary>
    public TimeSpan MaxChangesWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Most changes one <c>GET /api/changes</c> returns.</summary>
    public int MaxChangesLimit { get; set; } = 1000;
}

/// <summary>The server certificate for HTTPS: a PFX/PKCS#12 file (path relative to the content root) and its password.</summary>
public sealed class ApiCertificateOptions
{
    public string? Path { get; set; }

    public string? Password { get; set; }
}

internal sealed class ApiOptionsValidator : IValidateOptions<ApiOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiOptions options)
    {
        var failures = Problems(options).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static IEnumerable<string> Problems(ApiOptions options)
    {
        if (!options.Enabled)
        {
            yield break;
        }

        var urls = ApiAddresses.Split(options.Urls);
        if (urls.Count == 0)
        {
            yield return "Api:Urls is empty: give at least one address such as http://127.0.0.1:5080";
        }

        foreach (var url in urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/")
            {
                yield return $"Api:Urls: '{url}' is not an address like http://127.0.0.1:5080 or https://0.0.0.0:5443";
            }
            else if (uri.Scheme == "https" && string.IsNullOrWhiteSpace(options.Certificate.Path))
            {
                yield return $"Api:Certificate:Path is required for the https address '{url}' (a .pfx file with the server certificate)";
            }
        }

        if (options.MaxRequestBodyBytes < 1024)
        {
            yield return $"Api:MaxRequestBodyBytes must be at least 1024 (was {options.MaxRequestBodyBytes})";
        }

        if (options.MaxChangesWait < TimeSpan.Zero || options.MaxChangesWait > TimeSpan.FromMinutes(10))
        {
            yield return $"Api:MaxChangesWait must be between 00:00:00 and 00:10:00 (was {options.MaxChangesWait})";
        }

        if (options.MaxChangesLimit is < 1 or > 10000)
        {
            yield return $"Api:MaxChangesLimit must be between 1 and 10000 (was {options.MaxChangesLimit})";
        }
    }
}

internal static class ApiAddresses
{
    public static IReadOnlyList<string> Split(string? urls) =>
        (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
