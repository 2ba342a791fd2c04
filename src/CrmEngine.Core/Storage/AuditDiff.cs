using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using CrmEngine.Abstractions.Store;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>
/// Field-level difference of two stored images. Documents are flattened to paths
/// (<c>Profile.Region</c>, <c>Addresses[0].City</c>, <c>Custom.vip.Text</c>); a list of plain values is
/// one field (<c>Tags</c> = <c>["a","b"]</c>). Values are JSON text, readable (CJK is not escaped).
/// </summary>
internal static class AuditDiff
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static List<FieldChange> Compute(BsonDocument? before, BsonDocument? after)
    {
        var b = Flatten(before);
        var a = Flatten(after);
        var changes = new List<FieldChange>();
        foreach (var (field, value) in a)
        {
            b.TryGetValue(field, out var old);
            if (old != value)
            {
                changes.Add(new FieldChange(field, old, value));
            }
        }

        foreach (var (field, old) in b)
        {
            if (!a.ContainsKey(field))
            {
                changes.Add(new FieldChange(field, old, null));
            }
        }

        return changes;
    }

    /// <summary>
    /// The field changes one stored audit entry records. An update or delete stores them as <c>changes</c>
    /// (<c>[{f, b, a}]</c>, an absent side left out); a create stores its after-image once as <c>after</c> (cheaper to
    /// write than a diff against nothing, which is what every imported row was), read here as that diff. Every reader
    /// of <c>_audit</c> (the audit log, webhook images, the eraser) goes through this, so both shapes read the same.
    /// </summary>
    public static List<FieldChange> ChangesOf(BsonDocument entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.TryGetValue("after", out var after) && after.IsDocument)
        {
            return Compute(null, after.AsDocument);
        }

        var changes = new List<FieldChange>();
        if (entry.TryGetValue("changes", out var stored) && stored.IsArray)
        {
            foreach (var item in stored.AsArray)
            {
                var c = item.AsDocument;
                changes.Add(new FieldChange(
                    c["f"].AsString,
                    c.TryGetValue("b", out var b) && b.IsString ? b.AsString : null,
                    c.TryGetValue("a", out var a) && a.IsString ? a.AsString : null));
            }
        }

        return changes;
    }

    /// <summary>Field changes as stored in an audit entry's <c>changes</c>: absent sides are left out (smaller documents).</summary>
    public static BsonArray ToBson(IEnumerable<FieldChange> changes)
    {
        var array = new BsonArray();
        foreach (var c in changes)
        {
            var change = new BsonDocument { ["f"] = c.Field };
            if (c.Before is not null)
            {
                change["b"] = c.Before;
            }

            if (c.After is not null)
            {
                change["a"] = c.After;
            }

            array.Add(change);
        }

        return array;
    }

    public static Dictionary<string, string> Flatten(BsonDocument? doc)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (doc is not null)
        {
            foreach (var (key, value) in doc)
            {
                if (key == EntityDescriptor.LookUpMember)
                {
                    continue;
                }

                Walk(key == "_id" ? "Id" : key, value, result);
            }
        }

        return result;
    }

    private static void Walk(string path, BsonValue value, Dictionary<string, string> into)
    {
        if (value.IsDocument && value.AsDocument.Count > 0)
        {
            foreach (var (key, child) in value.AsDocument)
            {
                Walk(path + "." + key, child, into);
            }
        }
        else if (value.IsArray && value.AsArray.Any(v => v.IsDocument || v.IsArray))
        {
            var array = value.AsArray;
            for (var i = 0; i < array.Count; i++)
            {
                Walk($"{path}[{i}]", array[i], into);
            }
        }
        else
        {
            into[path] = ToJson(value);
        }
    }

    public static string ToJson(BsonValue value)
    {
        // Fast paths for the common scalars; documents and arrays go through Utf8JsonWriter.
        switch (value.Type)
        {
            case BsonType.Null:
                return "null";
            case BsonType.String:
                return Quote(value.AsString);
            case BsonType.Boolean:
                return value.AsBoolean ? "true" : "false";
            case BsonType.Int32:
                return value.AsInt32.ToString(CultureInfo.InvariantCulture);
            case BsonType.Int64:
                return value.AsInt64.ToString(CultureInfo.InvariantCulture);
            case BsonType.Decimal:
                return value.AsDecimal.ToString(CultureInfo.InvariantCulture);
        }

        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            Write(writer, value);
        }

        return Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length);
    }

    private static string Quote(string text)
    {
        var plain = true;
        foreach (var c in text)
        {
            if (c < ' ' || c == '"' || c == '\\')
            {
                plain = false;
                break;
            }
        }

        if (plain)
        {
            return string.Concat("\"", text, "\"");
        }

        var sb = new StringBuilder(text.Length + 8).Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < ' ')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    private static void Write(Utf8JsonWriter w, BsonValue v)
    {
        switch (v.Type)
        {
            case BsonType.Null:
            case BsonType.MinValue:
            case BsonType.MaxValue:
                w.WriteNullValue();
                break;
            case BsonType.Int32:
                w.WriteNumberValue(v.AsInt32);
                break;
            case BsonType.Int64:
                w.WriteNumberValue(v.AsInt64);
                break;
            case BsonType.Double:
                w.WriteNumberValue(v.AsDouble);
                break;
            case BsonType.Decimal:
                w.WriteNumberValue(v.AsDecimal);
                break;
            case BsonType.Boolean:
                w.WriteBooleanValue(v.AsBoolean);
                break;
            case BsonType.DateTime:
                w.WriteStringValue(v.AsDateTime.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                break;
            case BsonType.Document:
                w.WriteStartObject();
                foreach (var (key, child) in v.AsDocument)
                {
                    w.WritePropertyName(key);
                    Write(w, child);
                }

                w.WriteEndObject();
                break;
            case BsonType.Array:
                w.WriteStartArray();
                foreach (var child in v.AsArray)
                {
                    Write(w, child);
                }

                w.WriteEndArray();
                break;
            case BsonType.Binary:
                w.WriteBase64StringValue(v.AsBinary);
                break;
            default:
                w.WriteStringValue(v.IsString ? v.AsString : v.ToString());
                break;
        }
    }
}
