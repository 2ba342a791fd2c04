using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Http;
using CrmEngine.Security;

namespace CrmEngine.Api.Endpoints;

/// <summary>
/// A plugin request's <see cref="IRecordAccess"/>: the caller's <see cref="AccessContext"/> (the same one the resources use,
/// narrowed by the key's scope), with the owner read as the access model reads it everywhere (a declared owner field).
/// </summary>
internal sealed class PluginRecordAccess(AccessContext access) : IRecordAccess
{
    public string? Denial(string privilege, string entity, string recordId, JsonObject record)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(entity);
        ArgumentNullException.ThrowIfNull(record);
        if (!Enum.TryParse<Privilege>(privilege, ignoreCase: true, out var wanted) || !Enum.IsDefined(wanted))
        {
            throw new ArgumentException(
                $"unknown privilege '{privilege}': use one of {string.Join(", ", Enum.GetNames<Privilege>().Select(n => n.ToLowerInvariant()))}",
                nameof(privilege));
        }

        var target = access.Snapshot.RecordOf(entity, recordId ?? "", record);
        var decision = wanted == Privilege.Create ? access.CheckCreate(entity, target.Owner) : access.Check(wanted, target);
        return decision.Allowed ? null : decision.ToString();
    }

    public JsonObject Mask(string entity, JsonObject record) => access.Fields(entity).Apply(record);
}
