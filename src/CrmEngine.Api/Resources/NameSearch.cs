using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Resources;

/// <summary>
/// <c>?name=</c> on customers and products: a case-insensitive <b>prefix</b> search on the store's name index (names
/// kept trimmed and lower-cased, each entry <c>name\u0001id</c>), read as one ordered range of the index. Results come
/// in name order (then id); the cursor is the index entry of the last item (opaque, base64url), so a page neither
/// skips nor repeats a record whose name does not change meanwhile.
/// </summary>
internal static class NameSearch
{
    private const char Separator = '\u0001';

    public static bool Applies<T>(string? field) =>
        string.Equals(field, IndexedField.Name, StringComparison.OrdinalIgnoreCase) && (typeof(T) == typeof(Customer) || typeof(T) == typeof(Product));

    /// <summary>Up to <paramref name="take"/> records whose name starts with <paramref name="prefix"/>, with their cursors; null when the cursor is not one of ours.</summary>
    /// <remarks>
    /// <paramref name="visible"/> (the caller's access, by id and owner) is applied to each stored document as the index is
    /// read, before it is mapped to a record and before <paramref name="take"/> counts it.
    /// </remarks>
    public static IReadOnlyList<(T Record, string Cursor)>? Find<T>(HttpContext context, string prefix, int take, string? after,
        Func<string, string?, bool>? visible = null) where T : class, IEntity
    {
        var database = context.RequestServices.GetRequiredService<CrmDatabase>();
        var collection = typeof(T) == typeof(Customer) ? "customers" : "products";
        // The same normalisation as the index (trim, lower case, no control characters); the index cuts long keys, so does the prefix.
        var key = new string(prefix.Trim().ToLowerInvariant().Where(c => !char.IsControl(c)).ToArray());
        if (key.Length > 200)
        {
            key = key[..200];
        }

        string? from = null;
        if (after is not null)
        {
            from = Decode(after);
            if (from is null || !from.StartsWith(key, StringComparison.Ordinal) || !from.Contains(Separator, StringComparison.Ordinal))
            {
                return null;
            }
        }

        var low = from ?? key;
        var high = key + '\uffff';
        var path = "$._ix." + IndexedField.Name + "[*]";
        var found = new List<(T, string)>(take);
        var query = database.Database.GetCollection(collection).Query()
            .Where(BsonExpression.Create($"{path} ANY BETWEEN @0 AND @1", low, high));
        // One extra when resuming: the cursor's own entry is the first one at or after it and is skipped. With an access
        // filter the index range is read on until enough visible records are found (nothing hidden is counted).
        foreach (var doc in (visible is null ? query.Limit(take + (from is null ? 0 : 1)) : query).ToEnumerable())
        {
            var entry = doc["_ix"][IndexedField.Name].AsArray.Select(v => v.AsString)
                .Where(e => e.StartsWith(key, StringComparison.Ordinal) && string.CompareOrdinal(e, low) >= 0)
                .DefaultIfEmpty("").Min(StringComparer.Ordinal)!;
            if (from is not null && string.Equals(entry, from, StringComparison.Ordinal))
            {
                continue;
            }

            if (visible is not null && !visible(doc["_id"].AsString, doc.TryGetValue("Owner", out var owner) && owner.IsString ? owner.AsString : null))
            {
                continue;
            }

            found.Add((database.Mapper.ToObject<T>(doc), Encode(entry)));
            if (found.Count == take)
            {
                break;
            }
        }

        return found;
    }

    private static string Encode(string entry) => Convert.ToBase64String(Encoding.UTF8.GetBytes(entry)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string? Decode(string cursor)
    {
        var text = cursor.Replace('-', '+').Replace('_', '/');
        text = text.PadRight(text.Length + ((4 - (text.Length % 4)) % 4), '=');
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(text));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
