namespace CrmEngine.Abstractions.Plugins;

/// <summary>
/// What a plugin tells the access model about one of its entities (<see cref="IPluginBuilder.DeclareEntity"/>): which
/// field holds a record's owner (a user id or <c>team:&lt;id&gt;</c>, as <c>Customer.Owner</c> does), and which fields are
/// sensitive. Roles then grant privileges on <see cref="Entity"/> like on a core entity, and protected fields are hidden
/// from callers whose roles give no field privilege on them.
/// </summary>
/// <param name="PluginId">The declaring plugin.</param>
/// <param name="Entity">The entity name: <c>{pluginId}_{collection}</c>, as the store and the roles name it.</param>
/// <param name="OwnerField">The JSON name of the owner field (compared ignoring case), or null when records have no owner.</param>
/// <param name="ProtectedFields">JSON names of the sensitive fields (compared ignoring case).</param>
public sealed record EntityDeclaration(string PluginId, string Entity, string? OwnerField, IReadOnlyList<string> ProtectedFields);
