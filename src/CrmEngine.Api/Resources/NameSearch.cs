using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Resources;

/// <summary>
/// <c>?name=</c> on customers and products: a case-insensitive <b>prefix</b> search on the store's name look-up, read as
/// one ordered index range (<see cref="IndexReads.ByPrefix"/>). Results come in name order (then id); the cursor is the
/// index entry of the last item (opaque, base64url), so a page neither skips nor repeats a record whose name does not
/// change meanwhile.
/// </summary>
internal static class NameSearch
{
    /// <summary>Documents per index read for a caller who sees only some records (a page, its look-ahead and room for hidden ones).</summary>
    internal const int FilteredChunk = 128;

    public static bool Applies<T>(string? field) =>
        string.Equals(field, IndexedField.Name, StringComparison.OrdinalIgnoreCase) && (typeof(T) == typeof(Customer) || typeof(T) == typeof(Product));

    /// <summary>Up to <paramref name="take"/> records whose name starts with <paramref name="prefix"/>, with their cursors; null when the cursor is not one of ours.</summary>
    /// <remarks>
    /// <paramref name="visible"/> (the caller's access, by id and owner) is applied to each stored document as the index is
    /// read, before it is mapped to a record and before <paramref name="take"/> counts it; the range is read in chunks and
    /// reading stops once the page is full, so a caller who sees few of many matching names does not read them all.
    /// </remarks>
    public static IReadOnlyList<(T Record, string Cursor)>? Find<T>(HttpContext context, string prefix, int take, string? after,
        Func<string, string?, bool>? visible = null, IndexReadStats? stats = null) where T : class, IEntity
    {
        var database = context.RequestServices.GetRequiredService<CrmDatabase>();
        var entity = typeof(T) == typeof(Customer) ? CoreEntities.Customer : CoreEntities.Product;
        string? from = null;
        if (after is not null && (from = Decode(after)) is null)
        {
            return null;
        }

        var hits = IndexReads.ByPrefix(database, entity, IndexedField.Name, prefix, from,
            visible is null ? null : hit => visible(hit.Id, hit.Owner),
            visible is null ? take + 1 : Math.Max(FilteredChunk, take + 1), stats);
        return hits?.Take(take).Select(h => (database.Mapper.ToObject<T>(h.Document), Encode(h.Entry))).ToList();
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
