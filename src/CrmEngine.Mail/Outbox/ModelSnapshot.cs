using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.Mail.Outbox;

/// <summary>
/// The template model as it was at enqueue, kept as JSON in the outbox: customer, contact, order and the extra values.
/// At send time it is read back into the typed records and plain data (dictionaries, lists, text, numbers), so a
/// template sees what was true when the message was triggered, and never a live service.
/// </summary>
internal sealed class ModelSnapshot
{
    internal static readonly JsonSerializerOptions Json = CreateOptions();

    public Customer? Customer { get; set; }
    public ContactPerson? Contact { get; set; }
    public Order? Order { get; set; }
    public Dictionary<string, JsonElement>? Extra { get; set; }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            WriteIndented = false,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            // Extra values come from plugins and rules: a cycle or a huge graph must fail clearly, not hang.
            MaxDepth = 32,
            // Kept as readable text (names in any script); the snapshot is data, never put into HTML as it is.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }

    public static string Serialize(Customer? customer, ContactPerson? contact, Order? order, IReadOnlyDictionary<string, object?> extra)
    {
        var root = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["customer"] = customer,
            ["contact"] = contact,
            ["order"] = order,
            ["extra"] = extra,
        };
        try
        {
            return JsonSerializer.Serialize(root, Json);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException)
        {
            throw new ArgumentException($"Model: the values cannot be kept as data ({ex.Message}); pass plain values (text, numbers, lists, objects).", ex);
        }
    }

    public static ModelSnapshot Parse(string json) => JsonSerializer.Deserialize<ModelSnapshot>(json, Json) ?? new ModelSnapshot();

    /// <summary>The extra values as plain data for the template engine.</summary>
    public Dictionary<string, object?> PlainExtra()
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in Extra ?? [])
        {
            result[name] = Plain(value);
        }

        return result;
    }

    private static object? Plain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => Plain(p.Value), StringComparer.Ordinal),
        JsonValueKind.Array => e.EnumerateArray().Select(Plain).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetDecimal(out var d) ? d : double.Parse(e.GetRawText(), CultureInfo.InvariantCulture),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}
