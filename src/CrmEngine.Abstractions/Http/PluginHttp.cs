using System.Text.Json;
using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmEngine.Abstractions.Http;

/// <summary>What an API key (or user) may do; a plugin endpoint names the scope it needs.</summary>
public enum ApiScope
{
    Read,
    Write,
    Admin,
}

/// <summary>
/// An HTTP request to a plugin endpoint under <c>/api/plugins/{pluginId}/</c>, already authenticated by the host.
/// Plugins see no ASP.NET Core types, so a plugin keeps building against the SDK alone.
/// </summary>
public sealed class PluginHttpRequest
{
    public required string Method { get; init; }

    /// <summary>The path below <c>/api/plugins/{pluginId}</c>, starting with <c>/</c>.</summary>
    public required string Path { get; init; }

    /// <summary>Values of the route parameters of the endpoint's pattern, for example <c>id</c> in <c>leads/{id}</c>.</summary>
    public IReadOnlyDictionary<string, string> RouteValues { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyDictionary<string, string[]> Query { get; init; } = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Request headers except credentials (Authorization and the API key header are removed).</summary>
    public IReadOnlyDictionary<string, string[]> Headers { get; init; } = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);

    public ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>Who is calling, as the audit log names it (for example <c>apikey:ops-sync</c>).</summary>
    public required string Actor { get; init; }

    /// <summary>
    /// The caller's record access (roles, shares, field protection), set by the host for every request: check each record
    /// an endpoint answers or changes and mask what it answers. A request built outside the host denies everything.
    /// </summary>
    public IRecordAccess Access { get; init; } = NoRecordAccess.Instance;

    /// <summary>The body as JSON, with the host's rules: unknown members rejected, names case-insensitive.</summary>
    public T? ReadJson<T>() => JsonSerializer.Deserialize<T>(Body.Span, PluginHttpJson.Options);
}

/// <summary>A plugin endpoint's answer.</summary>
public sealed class PluginHttpResponse
{
    public int StatusCode { get; init; } = 200;
    public string? ContentType { get; init; }
    public ReadOnlyMemory<byte> Body { get; init; }
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    public static PluginHttpResponse Json<T>(T value, int statusCode = 200) => new()
    {
        StatusCode = statusCode,
        ContentType = "application/json; charset=utf-8",
        Body = JsonSerializer.SerializeToUtf8Bytes(value, PluginHttpJson.Options),
    };

    public static PluginHttpResponse Text(string text, int statusCode = 200) => new()
    {
        StatusCode = statusCode,
        ContentType = "text/plain; charset=utf-8",
        Body = System.Text.Encoding.UTF8.GetBytes(text),
    };

    public static PluginHttpResponse NoContent() => new() { StatusCode = 204 };

    /// <summary>An RFC 7807 problem; <paramref name="field"/> names the offending input when there is one.</summary>
    public static PluginHttpResponse Problem(int statusCode, string title, string? detail = null, string? field = null) => new()
    {
        StatusCode = statusCode,
        ContentType = "application/problem+json; charset=utf-8",
        Body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
        {
            ["type"] = "about:blank",
            ["title"] = title,
            ["status"] = statusCode,
            ["detail"] = detail,
            ["field"] = field,
        }, PluginHttpJson.Options),
    };
}

/// <summary>JSON settings shared by the host's API and plugin endpoints.</summary>
public static class PluginHttpJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };
}

/// <summary>Handles the requests of one plugin endpoint; resolved from the plugin's services once per request.</summary>
public interface IPluginHttpHandler
{
    Task<PluginHttpResponse> HandleAsync(PluginHttpRequest request, CancellationToken cancellationToken);
}

/// <summary>One endpoint a plugin declared; the host maps it under <c>/api/plugins/{pluginId}/{Pattern}</c>.</summary>
public sealed record PluginHttpEndpointDeclaration(string Method, string Pattern, ApiScope Scope, Type HandlerType);

public static class PluginHttpRegistrationExtensions
{
    /// <summary>
    /// Declares an endpoint under <c>/api/plugins/{pluginId}/{pattern}</c> (route template syntax, for example
    /// <c>leads/{id}</c>) answered by <typeparamref name="THandler"/>; callers need <paramref name="scope"/>.
    /// The call is guarded like every host-to-plugin call: a throw or timeout answers 500/503 and counts as a fault.
    /// </summary>
    public static IPluginBuilder AddHttpEndpoint<THandler>(this IPluginBuilder builder, string method, string pattern, ApiScope scope)
        where THandler : class, IPluginHttpHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(method);
        ArgumentNullException.ThrowIfNull(pattern);
        builder.Services.TryAddScoped<THandler>();
        builder.Services.AddSingleton(new PluginHttpEndpointDeclaration(method.ToUpperInvariant(), pattern.Trim('/'), scope, typeof(THandler)));
        return builder;
    }
}
