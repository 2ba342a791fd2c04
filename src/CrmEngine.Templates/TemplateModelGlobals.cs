using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scriban.Runtime;

namespace CrmEngine.Templates;

/// <summary>
/// The top-level variables of a render: <c>customer</c>, <c>contact</c>, <c>order</c>, <c>sender</c>,
/// <c>unsubscribe_url</c>, <c>culture</c>, <c>extra</c>, and each extra value under its own name too (unless
/// that name is taken). Read-only.
/// </summary>
internal static class TemplateModelGlobals
{
    public static readonly IReadOnlyList<string> ModelNames = ["customer", "contact", "order", "sender", "unsubscribe_url", "culture", "extra"];

    public static ScriptObject Build(TemplateModel model, ScriptObject builtins)
    {
        var globals = new ScriptObject(StringComparer.Ordinal)
        {
            ["customer"] = Masked(model.Customer, model.HiddenCustomerFields),
            ["contact"] = model.Contact,
            ["order"] = model.Order,
            ["sender"] = model.Sender,
            ["unsubscribe_url"] = model.UnsubscribeUrl,
            ["culture"] = model.Culture,
        };

        var extra = new ScriptObject(StringComparer.Ordinal);
        foreach (var (key, value) in model.Extra)
        {
            var converted = ToTemplateValue(value, 0);
            extra[key] = converted;
            // Extras are also reachable by their plain name (campaign.name) when that does not hide anything.
            if (!globals.ContainsKey(key) && !builtins.ContainsKey(key))
            {
                globals[key] = converted;
            }
        }

        extra.IsReadOnly = true;
        globals["extra"] = extra;
        globals.IsReadOnly = true;
        return globals;
    }

    /// <summary>The customer without its hidden members (a read-only object of the others), or the customer itself.</summary>
    private static object? Masked(object? customer, IReadOnlySet<string>? hidden)
    {
        if (customer is null || hidden is not { Count: > 0 })
        {
            return customer;
        }

        var visible = new ScriptObject(StringComparer.Ordinal);
        visible.Import(customer, ScriptMemberImportFlags.Property, member => !hidden.Any(h => string.Equals(h, member.Name, StringComparison.OrdinalIgnoreCase)), StandardMemberRenamer.Default);
        visible.IsReadOnly = true;
        return visible;
    }

    /// <summary>JSON values (as triggers often hold them) become plain template values; everything else is read as it is.</summary>
    private static object? ToTemplateValue(object? value, int depth)
    {
        if (depth > 32)
        {
            return null;
        }

        switch (value)
        {
            case JsonElement element:
                return FromElement(element, depth);
            case JsonValue jsonValue:
                return FromElement(jsonValue.GetValue<JsonElement>(), depth);
            case JsonObject jsonObject:
            {
                var result = new ScriptObject(StringComparer.Ordinal);
                foreach (var (key, item) in jsonObject)
                {
                    result[key] = ToTemplateValue(item, depth + 1);
                }

                result.IsReadOnly = true;
                return result;
            }

            case JsonArray jsonArray:
            {
                var result = new ScriptArray(jsonArray.Select(item => ToTemplateValue(item, depth + 1)));
                result.IsReadOnly = true;
                return result;
            }

            default:
                return value;
        }
    }

    private static object? FromElement(JsonElement element, int depth)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return element.GetString();
            case JsonValueKind.Number:
                return element.TryGetDecimal(out var number) ? number : element.GetDouble();
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            case JsonValueKind.Object:
            {
                var result = new ScriptObject(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    result[property.Name] = depth > 32 ? null : FromElement(property.Value, depth + 1);
                }

                result.IsReadOnly = true;
                return result;
            }

            case JsonValueKind.Array:
            {
                var result = new ScriptArray(element.EnumerateArray().Select(item => depth > 32 ? null : FromElement(item, depth + 1)));
                result.IsReadOnly = true;
                return result;
            }

            default:
                return null;
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, CultureInfo?> Cultures = new(StringComparer.Ordinal);

    public static CultureInfo CultureOf(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return CultureInfo.GetCultureInfo("en-US");
        }

        // Cached: the predefined-culture check asks ICU on every call.
        return Cultures.GetOrAdd(name.Trim(), static key =>
        {
            try
            {
                return CultureInfo.GetCultureInfo(key, predefinedOnly: true);
            }
            catch (CultureNotFoundException)
            {
                return null;
            }
        }) ?? throw new TemplateRenderException($"culture '{name}' is not known (use a name like en-US, de-DE or zh-CN)");
    }
}
