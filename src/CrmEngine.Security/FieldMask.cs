using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrmEngine.Security;

/// <summary>
/// Protected fields of one entity as one user sees them: <see cref="Hidden"/> ones are removed from every answer (API,
/// export, search, webhook, change feed) and refused as filters or sort keys; <see cref="ReadOnly"/> ones cannot be
/// changed. Field names are the JSON names (camelCase, compared ignoring case).
/// </summary>
public sealed class FieldMask
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    internal FieldMask(string entity, string userId, IReadOnlySet<string> hidden, IReadOnlySet<string> readOnly)
    {
        Entity = entity;
        UserId = userId;
        Hidden = hidden;
        ReadOnly = readOnly;
    }

    public string Entity { get; }
    public string UserId { get; }
    public IReadOnlySet<string> Hidden { get; }
    public IReadOnlySet<string> ReadOnly { get; }

    /// <summary>Removes hidden fields from a record's JSON (top level, as the API writes records). Returns the same object.</summary>
    public JsonObject Apply(JsonObject record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (Hidden.Count > 0)
        {
            foreach (var name in record.Select(p => p.Key).Where(Hidden.Contains).ToList())
            {
                record.Remove(name);
            }
        }

        return record;
    }

    /// <summary>A record serialised as the API does (web defaults), with hidden fields removed.</summary>
    public JsonObject Apply<T>(T record) => Apply(JsonSerializer.SerializeToNode(record, Json)!.AsObject());

    /// <summary>May <paramref name="field"/> be used to filter or sort? Hidden fields may not (their values would leak).</summary>
    public AccessDecision CheckQueryField(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        var asked = field.Split('.')[0];
        var top = Hidden.FirstOrDefault(h => string.Equals(h, asked, StringComparison.OrdinalIgnoreCase));
        return top is not null
            ? AccessDecision.Deny($"{Entity}.{top}:read", $"user '{UserId}' may not read {Entity}.{top}, so it cannot be used to filter or sort")
            : AccessDecision.Allow("not a hidden field");
    }

    /// <summary>
    /// May a write change the record from <paramref name="before"/> (null on create) to <paramref name="after"/>? Only
    /// protected fields the user may not write are checked; a create may leave them at their default.
    /// </summary>
    public AccessDecision CheckWrite<T>(T? before, T after) where T : class
    {
        if (ReadOnly.Count == 0)
        {
            return AccessDecision.Allow("no read-only fields");
        }

        var old = before is null ? JsonSerializer.SerializeToNode(Activator.CreateInstance(after.GetType()), after.GetType(), Json)!.AsObject()
            : JsonSerializer.SerializeToNode(before, before.GetType(), Json)!.AsObject();
        var now = JsonSerializer.SerializeToNode(after, after.GetType(), Json)!.AsObject();
        foreach (var field in ReadOnly.Order(StringComparer.Ordinal))
        {
            var a = old.FirstOrDefault(p => string.Equals(p.Key, field, StringComparison.OrdinalIgnoreCase)).Value;
            var b = now.FirstOrDefault(p => string.Equals(p.Key, field, StringComparison.OrdinalIgnoreCase)).Value;
            if (!JsonNode.DeepEquals(a, b))
            {
                return AccessDecision.Deny($"{Entity}.{field}:write", $"user '{UserId}' may not change {Entity}.{field}");
            }
        }

        return AccessDecision.Allow("no protected field changed");
    }
}
