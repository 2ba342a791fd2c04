using System.Text.Json.Nodes;

namespace CrmEngine.Abstractions.Http;

/// <summary>
/// The caller's record access for one plugin HTTP request (SDK 1.1): the same roles, depths, shares and field protection
/// the engine applies to its own resources, for core entities and for the plugin's declared ones
/// (<c>IPluginBuilder.DeclareEntity</c>: the owner is read from the declared owner field). A plugin endpoint that answers
/// records checks each one before it answers or changes it and masks what it answers.
/// </summary>
public interface IRecordAccess
{
    /// <summary>
    /// Null when the caller may do <paramref name="privilege"/> (<c>create</c>, <c>read</c>, <c>write</c>, <c>delete</c>,
    /// <c>assign</c>, <c>share</c>, <c>export</c>) on the record; otherwise why not, naming the missing privilege (for example
    /// <c>denied (acme_partner:read): ...</c>). Answer a read denial with 404 (id guessing reveals nothing), others with 403.
    /// </summary>
    /// <param name="privilege">The privilege name (case-insensitive).</param>
    /// <param name="entity">The stored entity name, for example <c>customer</c> or <c>acme_partner</c>.</param>
    /// <param name="recordId">The record's id.</param>
    /// <param name="record">The record as JSON (web names); its owner is read from the entity's owner field.</param>
    string? Denial(string privilege, string entity, string recordId, JsonObject record);

    /// <summary>The record without the fields the caller may not read (changes and returns <paramref name="record"/>).</summary>
    JsonObject Mask(string entity, JsonObject record);
}

/// <summary>Access of a request the host did not build (a plugin's own unit test): every check is denied, every field masked.</summary>
internal sealed class NoRecordAccess : IRecordAccess
{
    public static readonly NoRecordAccess Instance = new();

    public string? Denial(string privilege, string entity, string recordId, JsonObject record) =>
        $"denied ({entity}:{privilege}): the request was not made through the engine's API";

    public JsonObject Mask(string entity, JsonObject record)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.Clear();
        return record;
    }
}
