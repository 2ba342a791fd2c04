using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Plugins;

namespace CrmEngine.Security;

/// <summary>
/// Where plugin entity declarations come from (the plugin host implements it). The access model merges them into every
/// snapshot: their protected fields join those of the seed file, and <see cref="SecuritySnapshot.RecordOf(string, string, JsonObject)"/>
/// reads a record's owner from the declared field.
/// </summary>
public interface IEntityDeclarationSource
{
    /// <summary>Every declaration made so far (never shrinks while the engine runs).</summary>
    IReadOnlyCollection<EntityDeclaration> EntityDeclarations { get; }
}

/// <summary>How the access model reads records of declared (plugin) entities.</summary>
public static class DeclaredRecords
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The owner of a record of <paramref name="entity"/> read from its declared owner field (default <c>owner</c>), or null.</summary>
    public static string? OwnerOf(SecuritySnapshot snapshot, string entity, JsonObject record)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(record);
        var field = snapshot.DeclaredEntities.TryGetValue(entity, out var declared) ? declared.OwnerField : "owner";
        if (field is null)
        {
            return null;
        }

        var value = record.FirstOrDefault(p => string.Equals(p.Key, field, StringComparison.OrdinalIgnoreCase)).Value;
        return value is JsonValue v && v.TryGetValue<string>(out var owner) && owner.Length > 0 ? owner : null;
    }

    /// <summary>A plugin record serialised as the API does (web defaults).</summary>
    public static JsonObject ToJson<T>(T record) => JsonSerializer.SerializeToNode(record, Json)!.AsObject();
}
