using System.Text.Json;
using System.Text.Json.Serialization;
using CrmEngine.Abstractions.Http;

namespace CrmEngine.Api;

/// <summary>
/// The API's JSON rules (the SDK's <see cref="PluginHttpJson"/> ones): camelCase, names read case-insensitively,
/// unknown members rejected, numbers only as JSON numbers (a "12" for a number is a wrong type), enums as names.
/// </summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(PluginHttpJson.Options));

    /// <summary>Applies the API's rules to <paramref name="options"/> (the minimal APIs' own options are set this way).</summary>
    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.PropertyNameCaseInsensitive = true;
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        if (!options.Converters.OfType<JsonStringEnumConverter>().Any())
        {
            options.Converters.Add(new JsonStringEnumConverter());
        }

        return options;
    }
}
