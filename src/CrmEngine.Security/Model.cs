using CrmEngine.Abstractions.Model;

namespace CrmEngine.Security;

/// <summary>What a user is: a person, an integration account (API keys, ERP sync) or a named system user.</summary>
public enum UserKind { Person, Integration, System }

/// <summary>
/// How far a role's privilege reaches, measured from the user (or, for a team role, from the team's unit).
/// Each depth includes the ones before it.
/// </summary>
public enum AccessDepth
{
    /// <summary>Not at all.</summary>
    None = 0,

    /// <summary>Records the user owns, records owned by a team the user is in, records shared with either.</summary>
    Own = 1,

    /// <summary>Also records owned by any member of any of the user's teams.</summary>
    Team = 2,

    /// <summary>Also every record whose business unit is the user's (or the team role's team's) unit.</summary>
    Unit = 3,

    /// <summary>Also every record in units below that unit.</summary>
    UnitAndBelow = 4,

    /// <summary>Every record of the entity.</summary>
    All = 5,
}

/// <summary>The privileges a role grants per entity (and a share grants per record).</summary>
public enum Privilege { Create, Read, Write, Delete, Assign, Share, Export }

/// <summary>A user (the <c>Owner</c> of a record holds its id). Deactivated, never deleted: history keeps the name.</summary>
public sealed class SecurityUser : Entity
{
    public string Name { get; set; } = "";
    public string? Email { get; set; }
    public UserKind Kind { get; set; } = UserKind.Person;
    public string BusinessUnit { get; set; } = "";
    public string? Manager { get; set; }
    public string? Locale { get; set; }
    public string? TimeZone { get; set; }

    /// <summary>Name of a business calendar (crm calendars show NAME).</summary>
    public string? Calendar { get; set; }

    public List<string> Teams { get; set; } = [];
    public List<string> Roles { get; set; } = [];
    public bool Deactivated { get; set; }
    public DateTimeOffset? DeactivatedAt { get; set; }
}

/// <summary>A team: members get its roles; records can be owned by it (<c>Owner = "team:&lt;id&gt;"</c>).</summary>
public sealed class SecurityTeam : Entity
{
    public string Name { get; set; } = "";
    public string BusinessUnit { get; set; } = "";
    public List<string> Roles { get; set; } = [];
    public string? Description { get; set; }
}

/// <summary>A business unit; <see cref="Parent"/> is null only for the root (the organisation).</summary>
public sealed class BusinessUnit : Entity
{
    public string Name { get; set; } = "";
    public string? Parent { get; set; }
}

/// <summary>
/// A role: per entity (or <c>*</c> for every entity, plugin entities included) the depth of each privilege, and per
/// protected field (<c>entity.field</c> or <c>entity.*</c>) whether it may be read and written.
/// </summary>
public sealed class SecurityRole : Entity
{
    public string Name { get; set; } = "";
    public string? Description { get; set; }

    /// <summary>entity → privilege name → depth name, as in the seed file.</summary>
    public Dictionary<string, Dictionary<string, AccessDepth>> Privileges { get; set; } = new(StringComparer.Ordinal);

    /// <summary><c>entity.field</c> (or <c>entity.*</c>) → field rights.</summary>
    public Dictionary<string, FieldRights> Fields { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>Field privileges on one protected field.</summary>
public sealed class FieldRights
{
    public bool Read { get; set; }
    public bool Write { get; set; }
}

/// <summary>The shares of one record (id <c>entity:recordId</c>): who else may do what with it.</summary>
public sealed class RecordShare : Entity
{
    public string Entity { get; set; } = "";
    public string RecordId { get; set; } = "";
    public List<ShareGrant> Grants { get; set; } = [];

    public static string IdOf(string entity, string recordId) => entity + ":" + recordId;
}

/// <summary>One grant of a share: <see cref="Principal"/> is <c>user:&lt;id&gt;</c> or <c>team:&lt;id&gt;</c>.</summary>
public sealed class ShareGrant
{
    public string Principal { get; set; } = "";
    public List<Privilege> Privileges { get; set; } = [];
}

/// <summary>Protected fields of one entity (declared in the seed file): hidden unless a role grants field rights.</summary>
public sealed class ProtectedFields : Entity
{
    public List<string> Fields { get; set; } = [];
}

/// <summary>A record as the evaluator needs it: entity, id and owner (a user id, <c>team:&lt;id&gt;</c> or none).</summary>
public readonly record struct RecordRef(string Entity, string Id, string? Owner);

/// <summary>The owner value a record stores for a team.</summary>
public static class Owners
{
    public const string TeamPrefix = "team:";

    public static string Team(string teamId) => TeamPrefix + teamId;

    public static bool IsTeam(string? owner, out string teamId)
    {
        if (owner is not null && owner.StartsWith(TeamPrefix, StringComparison.Ordinal))
        {
            teamId = owner[TeamPrefix.Length..];
            return true;
        }

        teamId = "";
        return false;
    }
}
