using System.Text.Json;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.DataExchange.Csv;

/// <summary>A mapping file, or the columns of a file, is wrong; the message names the file and the column or field.</summary>
public sealed class MappingException(string message) : Exception(message);

/// <summary>
/// Which CSV column holds which customer field. From a mapping file (JSON):
/// <code>
/// { "delimiter": ";", "listSeparator": "|",
///   "columns": { "Firma": "name", "E-Mail": "emails", "PLZ": "address.postalCode",
///                "Kundennr": "externalId.erp", "VIP": { "field": "custom.vip", "type": "boolean" } } }
/// </code>
/// or, without one, from header names that are field names (plus a few common aliases).
/// </summary>
internal sealed class CustomerMapping
{
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["email"] = "emails", ["e-mail"] = "emails", ["mail"] = "emails",
        ["phone"] = "phones", ["telephone"] = "phones", ["tel"] = "phones",
        ["tag"] = "tags",
        ["postcode"] = "address.postalCode", ["postalCode"] = "address.postalCode", ["zip"] = "address.postalCode",
        ["city"] = "address.city", ["street"] = "address.line1", ["country"] = "address.country", ["region"] = "address.region",
    };

    private CustomerMapping(string? source, IReadOnlyList<(string Column, CustomerField Field)> columns, string? delimiter, string listSeparator)
    {
        Source = source;
        Columns = columns;
        Delimiter = delimiter;
        ListSeparator = listSeparator;
    }

    /// <summary>The mapping file, or null when the header decides.</summary>
    public string? Source { get; }
    public IReadOnlyList<(string Column, CustomerField Field)> Columns { get; }
    public string? Delimiter { get; }
    public string ListSeparator { get; }

    public static CustomerMapping FromHeader() => new(null, [], null, "|");

    public static CustomerMapping Load(string path)
    {
        var name = Path.GetFileName(path);
        if (!File.Exists(path))
        {
            throw new MappingException($"{path}: the mapping file does not exist");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new MappingException($"{name}: not valid JSON at line {(ex.LineNumber ?? 0) + 1}: {ex.Message}");
        }

        using (doc)
        {
            return Parse(name, doc.RootElement);
        }
    }

    private static CustomerMapping Parse(string name, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new MappingException($"{name}: the mapping must be a JSON object with \"columns\"");
        }

        string? delimiter = null;
        var listSeparator = "|";
        var columns = new List<(string, CustomerField)>();
        var sawColumns = false;
        foreach (var p in root.EnumerateObject())
        {
            switch (p.Name)
            {
                case "delimiter":
                    delimiter = Str(p.Value, "delimiter");
                    break;
                case "listSeparator":
                    listSeparator = Str(p.Value, "listSeparator");
                    break;
                case "columns":
                    sawColumns = true;
                    if (p.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw new MappingException($"{name}: \"columns\" must be an object of \"CSV column\": \"field\"");
                    }

                    foreach (var c in p.Value.EnumerateObject())
                    {
                        columns.Add((c.Name, FieldOf(name, c)));
                    }

                    break;
                default:
                    throw new MappingException($"{name}: unknown setting \"{p.Name}\" (known: delimiter, listSeparator, columns)");
            }
        }

        if (!sawColumns || columns.Count == 0)
        {
            throw new MappingException($"{name}: \"columns\" is missing or empty");
        }

        if (string.IsNullOrEmpty(listSeparator))
        {
            throw new MappingException($"{name}: \"listSeparator\" must not be empty");
        }

        return new CustomerMapping(name, columns, delimiter, listSeparator);

        string Str(JsonElement e, string setting) => e.ValueKind == JsonValueKind.String
            ? e.GetString()!
            : throw new MappingException($"{name}: \"{setting}\" must be a string");
    }

    private static CustomerField FieldOf(string file, JsonProperty column)
    {
        string field;
        CustomValueType? type = null;
        if (column.Value.ValueKind == JsonValueKind.String)
        {
            field = column.Value.GetString()!;
        }
        else if (column.Value.ValueKind == JsonValueKind.Object
                 && column.Value.TryGetProperty("field", out var f) && f.ValueKind == JsonValueKind.String)
        {
            field = f.GetString()!;
            if (column.Value.TryGetProperty("type", out var t))
            {
                if (t.ValueKind != JsonValueKind.String || !Enum.TryParse<CustomValueType>(t.GetString(), true, out var parsed)
                    || int.TryParse(t.GetString(), out _))
                {
                    throw new MappingException($"{file}: column '{column.Name}': type {t} is not one of text, number, date, boolean");
                }

                type = parsed;
            }
        }
        else
        {
            throw new MappingException($"{file}: column '{column.Name}' must map to a field name or {{ \"field\": ..., \"type\": ... }}");
        }

        return CustomerFields.Resolve(field, type)
               ?? throw new MappingException($"{file}: column '{column.Name}' maps to unknown field '{field}'. Known fields: {CustomerFields.Known}");
    }

    /// <summary>
    /// The columns of this file that are read, by position. A mapped column missing from the header is an error
    /// naming both; header columns no field matches are returned as <paramref name="ignored"/>.
    /// </summary>
    public List<(int Index, string Column, CustomerField Field)> Plan(string file, string[] header, out List<string> ignored)
    {
        ignored = [];
        var plan = new List<(int, string, CustomerField)>();
        if (Source is null)
        {
            for (var i = 0; i < header.Length; i++)
            {
                var h = header[i].Trim();
                var field = CustomerFields.Resolve(Aliases.TryGetValue(h, out var alias) ? alias : h);
                if (field is null)
                {
                    ignored.Add(h);
                }
                else
                {
                    plan.Add((i, h, field));
                }
            }

            if (plan.Count == 0)
            {
                throw new MappingException($"{file}: no header column is a customer field ({string.Join(", ", header)}); give a mapping file with --mapping");
            }

            return plan;
        }

        var positions = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < header.Length; i++)
        {
            positions.TryAdd(header[i].Trim(), i);
        }

        foreach (var (column, field) in Columns)
        {
            if (!positions.TryGetValue(column.Trim(), out var index))
            {
                throw new MappingException($"{file}: column '{column}' named in mapping {Source} is not in the header (columns: {string.Join(", ", header)})");
            }

            plan.Add((index, column, field));
        }

        var used = plan.Select(p => p.Item1).ToHashSet();
        ignored.AddRange(header.Where((_, i) => !used.Contains(i)));
        return plan;
    }
}
