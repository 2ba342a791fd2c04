using System.Globalization;
using System.Text.Json.Nodes;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Webhooks;

/// <summary>
/// The record as it was stored right after one change, rebuilt from the audit log (written in the same
/// transaction as every change). Reading the live record instead would hand a receiver a later state whenever
/// the record changed again before the dispatcher caught up (bulk imports, bursts), so the audit entries of the
/// record up to the change's sequence are folded: each entry holds the new JSON value of every field it changed.
/// Field names are the stored ones (<c>Id</c>, <c>Email</c>, <c>Profile.Region</c> becomes a nested object);
/// <see cref="PayloadShape"/> turns the image into the API's shape.
/// </summary>
internal sealed class RecordImages(CrmDatabase database)
{
    private ILiteCollection<BsonDocument> Audit => database.Database.GetCollection(CrmDatabase.AuditCollection);

    /// <summary>
    /// The image after the change with <paramref name="sequence"/>, or null when the record did not exist after it. With
    /// <paramref name="orLastKnown"/> a record deleted by then gives its image from just before the delete (the customer
    /// of a consent entry removed together with it still decides who may read the entry).
    /// </summary>
    public JsonObject? After(string entity, string entityId, long sequence, bool orLastKnown = false)
    {
        var fields = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        OrderedDictionary<string, string>? beforeDelete = null;
        var exists = false;
        var from = AuditLog.Key(entity, entityId, 0);
        var to = AuditLog.Key(entity, entityId, sequence);
        foreach (var entry in Audit.Find(Query.Between("_id", from, to)))
        {
            var op = entry["op"].AsString;
            if (op == "Delete")
            {
                if (orLastKnown && exists)
                {
                    beforeDelete = new OrderedDictionary<string, string>(fields, StringComparer.Ordinal);
                }

                fields.Clear();
                exists = false;
                continue;
            }

            exists = true;
            foreach (var change in AuditDiff.ChangesOf(entry))
            {
                if (change.After is { } after)
                {
                    fields[change.Field] = after;
                }
                else
                {
                    fields.Remove(change.Field);
                }
            }
        }

        return exists ? Unflatten(fields) : beforeDelete is null ? null : Unflatten(beforeDelete);
    }

    /// <summary>Turns audit paths (<c>Profile.Region</c>, <c>Addresses[0].City</c>) back into nested JSON.</summary>
    internal static JsonObject Unflatten(IEnumerable<KeyValuePair<string, string>> fields)
    {
        var root = new JsonObject();
        foreach (var (path, json) in fields)
        {
            var value = JsonNode.Parse(json);
            JsonNode container = root;
            var segments = ParsePath(path);
            for (var i = 0; i < segments.Count; i++)
            {
                var last = i == segments.Count - 1;
                var segment = segments[i];
                JsonNode? NewChild() => segments[i + 1].Index is null ? new JsonObject() : new JsonArray();
                if (segment.Index is { } index)
                {
                    var array = (JsonArray)container;
                    while (array.Count <= index)
                    {
                        array.Add(null);
                    }

                    if (last)
                    {
                        array[index] = value;
                    }
                    else
                    {
                        container = array[index] ??= NewChild()!;
                    }
                }
                else
                {
                    var obj = (JsonObject)container;
                    if (last)
                    {
                        obj[segment.Name!] = value;
                    }
                    else
                    {
                        if (obj[segment.Name!] is not { } child || child is JsonValue)
                        {
                            child = NewChild()!;
                            obj[segment.Name!] = child;
                        }

                        container = child;
                    }
                }
            }
        }

        return root;
    }

    private readonly record struct PathSegment(string? Name, int? Index);

    private static List<PathSegment> ParsePath(string path)
    {
        var segments = new List<PathSegment>();
        foreach (var part in path.Split('.'))
        {
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            var start = segments.Count;
            segments.Add(new PathSegment(bracket < 0 ? part : part[..bracket], null));
            while (bracket >= 0)
            {
                var close = part.IndexOf(']', bracket);
                if (close < 0 || !int.TryParse(part.AsSpan(bracket + 1, close - bracket - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    // Not an index after all (a key with a bracket in it): keep the text as a name.
                    segments.RemoveRange(start, segments.Count - start);
                    segments.Add(new PathSegment(part, null));
                    break;
                }

                segments.Add(new PathSegment(null, index));
                bracket = part.IndexOf('[', close);
            }
        }

        return segments;
    }
}
