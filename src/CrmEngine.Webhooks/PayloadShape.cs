using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Api;

namespace CrmEngine.Webhooks;

/// <summary>
/// Gives a webhook's <c>data</c> the API's JSON shape: the record as <c>GET /api/{resource}/{id}</c> answers it
/// (camelCase names, every member of the type, enums as names). The image rebuilt from the audit log has the stored
/// names (<c>Id</c>, <c>Emails</c>, <c>Profile.Region</c>); for the core entities it is read into their type and
/// written with the API's options. Records of plugin collections (types the host does not know) get every member name
/// camelCased, dictionary keys included.
/// </summary>
internal static class PayloadShape
{
    private static readonly Dictionary<string, Type> CoreTypes = new(StringComparer.Ordinal)
    {
        [EntityNames.Customer] = typeof(Customer),
        [EntityNames.Activity] = typeof(Activity),
        [EntityNames.Order] = typeof(Order),
        [EntityNames.Product] = typeof(Product),
        [EntityNames.Consent] = typeof(ConsentEntry),
    };

    // The stored image: names in any case, unknown members skipped (a field the type no longer has), enums as names or numbers.
    private static readonly JsonSerializerOptions StoredImage = new()
    {
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        Converters = { new JsonStringEnumConverter() },
    };

    public static JsonNode? ToApi(string entity, JsonObject? stored)
    {
        if (stored is null)
        {
            return null;
        }

        if (CoreTypes.TryGetValue(entity, out var type))
        {
            try
            {
                var record = stored.Deserialize(type, StoredImage);
                return JsonSerializer.SerializeToNode(record, type, ApiJson.Options);
            }
            catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException or FormatException)
            {
                // A stored value the type cannot read (an old record): the names still follow the API's rule.
            }
        }

        return CamelCase(stored);
    }

    /// <summary>Member names of objects become camelCase (as <see cref="JsonNamingPolicy.CamelCase"/> does); values are kept.</summary>
    internal static JsonNode? CamelCase(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                var result = new JsonObject();
                foreach (var (name, value) in obj)
                {
                    result[JsonNamingPolicy.CamelCase.ConvertName(name)] = CamelCase(value);
                }

                return result;
            case JsonArray array:
                return new JsonArray(array.Select(CamelCase).ToArray());
            default:
                return node?.DeepClone();
        }
    }
}
