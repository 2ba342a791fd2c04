using System.Collections.Frozen;
using System.Globalization;
using CrmEngine.Abstractions.Http;

namespace CrmEngine.Security;

/// <summary>An answer of the evaluator. A denial names the missing privilege (<c>customer:write</c>) and says why.</summary>
public readonly record struct AccessDecision(bool Allowed, string? Missing, string Reason)
{
    public static AccessDecision Allow(string reason) => new(true, null, reason);

    public static AccessDecision Deny(string missing, string reason) => new(false, missing, reason);

    public override string ToString() => Allowed ? "allowed: " + Reason : $"denied ({Missing}): {Reason}";
}

/// <summary>Where one role grants one privilege: the depth and the unit it is measured from.</summary>
internal readonly record struct Grant(AccessDepth Depth, string? Anchor, string Role, string? ViaTeam);

/// <summary>What one user's roles (direct and through teams) add up to. Built once per user and snapshot.</summary>
internal sealed class AccessProfile
{
    private readonly Dictionary<(string Entity, Privilege Privilege), List<Grant>> _grants = [];
    private readonly Dictionary<string, FieldRights> _fields = new(StringComparer.OrdinalIgnoreCase);

    public AccessProfile(SecuritySnapshot snapshot, SecurityUser user)
    {
        User = user;
        Teams = user.Teams.Where(snapshot.Teams.ContainsKey).ToFrozenSet(StringComparer.Ordinal);
        var sources = user.Roles.Select(r => (Role: r, Anchor: (string?)user.BusinessUnit, Team: (string?)null))
            .Concat(Teams.SelectMany(t => snapshot.Teams[t].Roles.Select(r => (Role: r, Anchor: (string?)snapshot.Teams[t].BusinessUnit, Team: (string?)t))));
        foreach (var (roleId, anchor, team) in sources)
        {
            if (!snapshot.Roles.TryGetValue(roleId, out var role))
            {
                continue;
            }

            foreach (var (entity, privileges) in role.Privileges)
            {
                foreach (var (name, depth) in privileges)
                {
                    if (depth != AccessDepth.None && Enum.TryParse<Privilege>(name, ignoreCase: true, out var privilege))
                    {
                        var key = (entity, privilege);
                        (_grants.TryGetValue(key, out var list) ? list : _grants[key] = []).Add(new Grant(depth, anchor, role.Id, team));
                    }
                }
            }

            foreach (var (field, rights) in role.Fields)
            {
                var merged = _fields.TryGetValue(field, out var had) ? had : _fields[field] = new FieldRights();
                merged.Read |= rights.Read || rights.Write;
                merged.Write |= rights.Write;
            }
        }

        // A role's "*" entry applies to every entity; an entity's own entry adds to it (rights add up).
        Peers = Teams.SelectMany(t => snapshot.TeamMembers.TryGetValue(t, out var m) ? m : []).Append(user.Id).ToFrozenSet(StringComparer.Ordinal);
    }

    public SecurityUser User { get; }

    public FrozenSet<string> Teams { get; }

    /// <summary>The user and every member of the user's teams (team depth).</summary>
    public FrozenSet<string> Peers { get; }

    public IEnumerable<Grant> GrantsFor(string entity, Privilege privilege)
    {
        if (_grants.TryGetValue((entity, privilege), out var own))
        {
            foreach (var g in own)
            {
                yield return g;
            }
        }

        if (entity != "*" && _grants.TryGetValue(("*", privilege), out var any))
        {
            foreach (var g in any)
            {
                yield return g;
            }
        }
    }

    public AccessDepth BestDepth(string entity, Privilege privilege) =>
        GrantsFor(entity, privilege).Select(g => g.Depth).DefaultIfEmpty(AccessDepth.None).Max();

    public FieldRights RightsOn(string entity, string field)
    {
        var rights = new FieldRights();
        foreach (var key in new[] { entity + "." + field, entity + ".*", "*.*" })
        {
            if (_fields.TryGetValue(key, out var r))
            {
                rights.Read |= r.Read;
                rights.Write |= r.Write;
            }
        }

        return rights;
    }
}

/// <summary>
/// The access of one user, narrowed by an API key's scope when the call comes with one. Every answer is computed from
/// one <see cref="SecuritySnapshot"/>; build a new context per request.
/// </summary>
public sealed class AccessContext
{
    private readonly SecuritySnapshot _snapshot;
    private readonly AccessProfile? _profile;
    private readonly string? _refusal;

    private readonly bool _unrestricted;

    internal AccessContext(SecuritySnapshot snapshot, string userId, ApiScope? scope, bool unrestricted = false)
    {
        _snapshot = snapshot;
        UserId = userId;
        Scope = scope;
        _unrestricted = unrestricted;
        if (unrestricted)
        {
            return;
        }

        if (!snapshot.Users.TryGetValue(userId, out var user))
        {
            _refusal = $"there is no user '{userId}'";
        }
        else if (user.Deactivated)
        {
            _refusal = $"user '{userId}' is deactivated";
        }
        else
        {
            _profile = snapshot.ProfileOf(user);
        }
    }

    /// <summary>
    /// The access of <paramref name="userId"/> as an API caller. While the access model is not set up (no users at all:
    /// <c>crm security seed</c> has not run), a key without a user (<c>sys-api</c>) keeps the scope-only access it had
    /// before users existed, so that a fresh install works; once any user exists, every caller is a user and is checked.
    /// </summary>
    public static AccessContext ForCaller(SecuritySnapshot snapshot, string userId, ApiScope? scope)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        return new AccessContext(snapshot, userId, scope, unrestricted: snapshot.Users.Count == 0 && userId == SecurityAdministration.SystemUsers.Api);
    }

    public string UserId { get; }

    /// <summary>True when every record is reachable within the scope (the access model is not set up yet).</summary>
    public bool Unrestricted => _unrestricted;

    /// <summary>The key's scope, or null when the caller is not narrowed (CLI, the engine itself).</summary>
    public ApiScope? Scope { get; }

    public SecuritySnapshot Snapshot => _snapshot;

    /// <summary>The user's teams (empty for an unknown or deactivated user).</summary>
    public IReadOnlySet<string> Teams => (IReadOnlySet<string>?)_profile?.Teams ?? FrozenSet<string>.Empty;

    /// <summary>The deepest depth the user's roles give for a privilege on an entity (None when refused).</summary>
    public AccessDepth DepthOf(string entity, Privilege privilege) =>
        !ScopeAllows(privilege) ? AccessDepth.None : _unrestricted ? AccessDepth.All : _profile is null ? AccessDepth.None : _profile.BestDepth(entity, privilege);

    /// <summary>May the user create a record of <paramref name="entity"/> owned by <paramref name="owner"/>?</summary>
    public AccessDecision CheckCreate(string entity, string? owner) =>
        Check(Privilege.Create, new RecordRef(entity, "", owner ?? UserId));

    /// <summary>Privilege <paramref name="privilege"/> on one stored record (its owner and shares decide).</summary>
    public AccessDecision Check(Privilege privilege, RecordRef record)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(record.Entity);
        var missing = Missing(record.Entity, privilege);
        if (Refused(privilege, missing) is { } refused)
        {
            return refused;
        }

        if (_unrestricted)
        {
            return AccessDecision.Allow("the access model is not set up yet (no users): a key without a user has its scope only");
        }

        var unit = _snapshot.UnitOfOwner(record.Owner);
        var best = AccessDepth.None;
        foreach (var grant in _profile!.GrantsFor(record.Entity, privilege))
        {
            best = grant.Depth > best ? grant.Depth : best;
            if (Reaches(grant, record.Owner, unit))
            {
                return AccessDecision.Allow($"role '{grant.Role}'{(grant.ViaTeam is null ? "" : $" (team '{grant.ViaTeam}')")} grants {missing} at depth {Name(grant.Depth)}");
            }
        }

        if (best == AccessDepth.None)
        {
            return AccessDecision.Deny(missing, $"no role of user '{UserId}' grants {missing}");
        }

        // Shares reach further, but only for a privilege the user's roles grant at some depth (as in Dynamics).
        if (record.Id.Length > 0 && _snapshot.Shares.TryGetValue(RecordShare.IdOf(record.Entity, record.Id), out var share))
        {
            foreach (var g in share.Grants)
            {
                if (g.Privileges.Contains(privilege) && IsMe(g.Principal))
                {
                    return AccessDecision.Allow($"{record.Entity} '{record.Id}' is shared with {g.Principal} for {Name(privilege)}");
                }
            }
        }

        return AccessDecision.Deny(missing,
            $"user '{UserId}' has {missing} at depth {Name(best)}, which does not reach {record.Entity} '{record.Id}' owned by '{record.Owner ?? "(nobody)"}' in unit '{unit ?? "(none)"}'");
    }

    /// <summary>
    /// What a query must keep for this user: owners (user ids and <c>team:id</c>) whose records are visible, whether
    /// records without a known owner are, and ids shared with the user. Filter in the query, not after it, so that
    /// paging and counts cover visible records only.
    /// </summary>
    public QueryFilter Filter(string entity, Privilege privilege = Privilege.Read)
    {
        var missing = Missing(entity, privilege);
        if (Refused(privilege, missing) is { } refused)
        {
            return QueryFilter.Nothing(refused.Missing!, refused.Reason);
        }

        if (_unrestricted)
        {
            return QueryFilter.Everything(this, entity, privilege);
        }

        // Scope only refuses (above), so the rest depends on the snapshot and user alone and is cached with the snapshot.
        return _snapshot.Filters.GetOrAdd((UserId, entity, privilege), _ => BuildFilter(entity, privilege, missing));
    }

    private QueryFilter BuildFilter(string entity, Privilege privilege, string missing)
    {
        var owners = new HashSet<string>(StringComparer.Ordinal);
        var unowned = false;
        var any = false;
        foreach (var grant in _profile!.GrantsFor(entity, privilege))
        {
            any = true;
            switch (grant.Depth)
            {
                case AccessDepth.All:
                    return QueryFilter.Everything(this, entity, privilege);
                case AccessDepth.UnitAndBelow or AccessDepth.Unit when grant.Anchor is { } anchor:
                    var units = grant.Depth == AccessDepth.Unit ? new HashSet<string>([anchor], StringComparer.Ordinal) : _snapshot.Subtree(anchor);
                    if (grant.Depth == AccessDepth.UnitAndBelow && anchor == _snapshot.RootUnit)
                    {
                        return QueryFilter.Everything(this, entity, privilege);
                    }

                    owners.UnionWith(_snapshot.Users.Values.Where(u => units.Contains(u.BusinessUnit)).Select(u => u.Id));
                    owners.UnionWith(_snapshot.Teams.Values.Where(t => units.Contains(t.BusinessUnit)).Select(t => Owners.Team(t.Id)));
                    unowned |= _snapshot.RootUnit is { } root && units.Contains(root);
                    goto case AccessDepth.Team;
                case AccessDepth.Team:
                    owners.UnionWith(_profile.Peers);
                    goto case AccessDepth.Own;
                case AccessDepth.Own:
                    owners.Add(UserId);
                    owners.UnionWith(_profile.Teams.Select(Owners.Team));
                    break;
            }
        }

        if (!any)
        {
            return QueryFilter.Nothing(missing, $"no role of user '{UserId}' grants {missing}");
        }

        var shared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var principal in _profile.Teams.Select(t => "team:" + t).Append("user:" + UserId))
        {
            if (_snapshot.SharesByPrincipal.TryGetValue(principal, out var shares))
            {
                shared.UnionWith(shares.Where(s => s.Entity == entity && s.Grants.Any(g => g.Principal == principal && g.Privileges.Contains(privilege))).Select(s => s.RecordId));
            }
        }

        return new QueryFilter(this, entity, privilege, false, owners.ToFrozenSet(StringComparer.Ordinal), unowned, shared.ToFrozenSet(StringComparer.Ordinal), null);
    }

    /// <summary>The protected fields of an entity this user may not read or not write.</summary>
    public FieldMask Fields(string entity)
    {
        var hidden = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var readOnly = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (!_unrestricted && _snapshot.ProtectedFields.TryGetValue(entity, out var fields))
        {
            foreach (var field in fields)
            {
                var rights = _profile?.RightsOn(entity, field) ?? new FieldRights();
                var canWrite = rights.Write && ScopeAllows(Privilege.Write);
                if (!rights.Read)
                {
                    hidden.Add(field);
                }

                if (!canWrite)
                {
                    readOnly.Add(field);
                }
            }
        }

        return new FieldMask(entity, UserId, hidden.ToFrozenSet(StringComparer.OrdinalIgnoreCase), readOnly.ToFrozenSet(StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>True when the user may manage users, teams, roles and shares of others (write on <c>security</c> at depth all).</summary>
    public bool CanAdministerSecurity => Scope is null or ApiScope.Admin && DepthOf(SecurityEntities.Administration, Privilege.Write) == AccessDepth.All;

    internal bool IsMe(string principal) =>
        principal == "user:" + UserId || (principal.StartsWith("team:", StringComparison.Ordinal) && Teams.Contains(principal[5..]));

    /// <summary>Does <paramref name="grant"/> reach a record owned by <paramref name="owner"/> in <paramref name="unit"/>?</summary>
    private bool Reaches(Grant grant, string? owner, string? unit)
    {
        var mine = owner is not null && (owner == UserId || (Owners.IsTeam(owner, out var t) && _profile!.Teams.Contains(t)));
        return grant.Depth switch
        {
            AccessDepth.Own => mine,
            AccessDepth.Team => mine || (owner is not null && _profile!.Peers.Contains(owner)),
            AccessDepth.Unit => mine || (owner is not null && _profile!.Peers.Contains(owner)) || (unit is not null && unit == grant.Anchor),
            AccessDepth.UnitAndBelow => mine || (owner is not null && _profile!.Peers.Contains(owner)) ||
                                        (unit is not null && grant.Anchor is not null && _snapshot.Subtree(grant.Anchor).Contains(unit)),
            AccessDepth.All => true,
            _ => false,
        };
    }

    private AccessDecision? Refused(Privilege privilege, string missing)
    {
        if (_refusal is not null)
        {
            return AccessDecision.Deny(missing, _refusal);
        }

        return ScopeAllows(privilege) ? null : AccessDecision.Deny(missing, $"the API key's scope '{Scope.ToString()!.ToLowerInvariant()}' does not allow {Name(privilege)}");
    }

    /// <summary>A key's scope narrows: read allows read and export; write and admin allow every record privilege.</summary>
    private bool ScopeAllows(Privilege privilege) => Scope switch
    {
        null or ApiScope.Admin or ApiScope.Write => true,
        ApiScope.Read => privilege is Privilege.Read or Privilege.Export,
        _ => false,
    };

    /// <summary>The name of a privilege on an entity as denials give it: <c>customer:read</c>.</summary>
    public static string Missing(string entity, Privilege privilege) => entity + ":" + Name(privilege);

    public static string Name(Privilege privilege) => privilege.ToString().ToLowerInvariant();

    public static string Name(AccessDepth depth) => depth switch
    {
        AccessDepth.UnitAndBelow => "unitAndBelow",
        _ => depth.ToString().ToLower(CultureInfo.InvariantCulture),
    };
}

/// <summary>Entity names of the access model that roles can name besides the record entities.</summary>
public static class SecurityEntities
{
    /// <summary>Managing users, teams, units, roles and others' shares: <c>security: write at all</c>.</summary>
    public const string Administration = "security";
}

/// <summary>
/// The visible part of one entity for one user and privilege, as a query filter. Use <see cref="Owners"/> with the owner
/// index (<c>FindAsync("owner", o)</c>, merged in id order: see <see cref="VisibleRecords"/>), plus <see cref="SharedIds"/>;
/// when <see cref="Unowned"/> is set, records without a known owner are visible too.
/// </summary>
public sealed class QueryFilter
{
    internal QueryFilter(AccessContext? context, string entity, Privilege privilege, bool all, IReadOnlySet<string> owners, bool unowned,
        IReadOnlySet<string> sharedIds, string? refusal)
    {
        Context = context;
        Entity = entity;
        Privilege = privilege;
        All = all;
        Owners = owners;
        Unowned = unowned;
        SharedIds = sharedIds;
        Refusal = refusal;
    }

    internal AccessContext? Context { get; }
    public string Entity { get; }
    public Privilege Privilege { get; }

    /// <summary>Every record is visible: no filter needed.</summary>
    public bool All { get; }

    public IReadOnlySet<string> Owners { get; }

    /// <summary>Records whose owner is empty or not a known user/team (they belong to the root unit) are visible.</summary>
    public bool Unowned { get; }

    public IReadOnlySet<string> SharedIds { get; }

    /// <summary>Why nothing is visible (the missing privilege and reason), or null.</summary>
    public string? Refusal { get; }

    public bool IsEmpty => !All && Owners.Count == 0 && !Unowned && SharedIds.Count == 0;

    /// <summary>The same test as the query, for one record (for example a change-feed entry or a webhook payload).</summary>
    public bool Matches(string id, string? owner)
    {
        if (All || SharedIds.Contains(id) || (owner is not null && Owners.Contains(owner)))
        {
            return true;
        }

        if (!Unowned || Context is null)
        {
            return false;
        }

        var snapshot = Context.Snapshot;
        return owner is null || (Security.Owners.IsTeam(owner, out var t) ? !snapshot.Teams.ContainsKey(t) : !snapshot.Users.ContainsKey(owner));
    }

    internal static QueryFilter Everything(AccessContext context, string entity, Privilege privilege) =>
        new(context, entity, privilege, true, FrozenSet<string>.Empty, true, FrozenSet<string>.Empty, null);

    internal static QueryFilter Nothing(string missing, string reason) =>
        new(null, missing.Split(':')[0], Enum.Parse<Privilege>(missing.Split(':')[1], ignoreCase: true), false, FrozenSet<string>.Empty, false,
            FrozenSet<string>.Empty, $"{missing}: {reason}");
}
