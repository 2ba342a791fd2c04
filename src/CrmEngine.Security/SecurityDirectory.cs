using System.Collections.Frozen;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Security;

/// <summary>
/// Where the access model is stored: plugin-style collections owned by <c>security</c> in the engine's store
/// (<c>security_users</c>, <c>security_teams</c>, <c>security_units</c>, <c>security_roles</c>, <c>security_shares</c>,
/// <c>security_fields</c>). Every change goes through the write pipeline, so the audit log and the change feed say who
/// changed a role, a team or a user. Readers get an immutable <see cref="SecuritySnapshot"/>, rebuilt after a change
/// made through this class (all administration goes through it: CLI, control channel and, next, the API).
/// </summary>
public sealed class SecurityDirectory
{
    /// <summary>The collection owner: entity names are <c>security_&lt;collection&gt;</c>.</summary>
    public const string Owner = "security";

    internal const string UsersName = "users";
    internal const string TeamsName = "teams";
    internal const string UnitsName = "units";
    internal const string RolesName = "roles";
    internal const string SharesName = "shares";
    internal const string FieldsName = "fields";

    private readonly IStoreProvider _stores;
    private readonly SemaphoreSlim _loadGate = new(1, 1);
    /// <summary>
    /// A snapshot older than this is loaded again, so a change that did not come through this class (a restored backup,
    /// a direct store write) is seen within this time. Changes through the administration are seen at once.
    /// </summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);

    private SecuritySnapshot? _snapshot;
    private long _loadedAt;
    private long _generation;

    private readonly Func<IEnumerable<IEntityDeclarationSource>> _resolveDeclarations;
    private IEntityDeclarationSource[]? _declarationSources;
    private int _declarationCount;

    /// <param name="stores">The engine's store.</param>
    /// <param name="declarations">Where plugin entity declarations come from (the plugin host); merged into every snapshot.</param>
    public SecurityDirectory(IStoreProvider stores, Func<IEnumerable<IEntityDeclarationSource>>? declarations = null)
    {
        _stores = stores ?? throw new ArgumentNullException(nameof(stores));
        _resolveDeclarations = declarations ?? (() => []);
    }

    // Resolved on first use (not in the constructor): the plugin host may itself depend on the access model.
    private IEntityDeclarationSource[] Sources() => _declarationSources ??= _resolveDeclarations().ToArray();

    private List<EntityDeclaration> Declarations() => Sources().SelectMany(d => d.EntityDeclarations).ToList();

    private int DeclarationCount()
    {
        var count = 0;
        foreach (var source in Sources())
        {
            count += source.EntityDeclarations.Count;
        }

        return count;
    }

    /// <summary>The entity name of one security collection (for audit queries and handler registration).</summary>
    public static string EntityName(string collection) => CrmStore.PluginEntityName(Owner, collection);

    internal Sets For(string actor) => new(_stores.ForActor(actor, Owner));

    /// <summary>The current model. Cheap when nothing changed since the last call.</summary>
    public async Task<SecuritySnapshot> SnapshotAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _snapshot) is { } current && Fresh())
        {
            return current;
        }

        await _loadGate.WaitAsync(cancellationToken);
        try
        {
            if (Volatile.Read(ref _snapshot) is { } loaded && Fresh())
            {
                return loaded;
            }

            var generation = Interlocked.Read(ref _generation);
            var declared = Declarations();
            var sets = For("system:security");
            var snapshot = new SecuritySnapshot(
                await AllAsync(sets.Users, cancellationToken),
                await AllAsync(sets.Teams, cancellationToken),
                await AllAsync(sets.Units, cancellationToken),
                await AllAsync(sets.Roles, cancellationToken),
                await AllAsync(sets.Shares, cancellationToken),
                await AllAsync(sets.Fields, cancellationToken),
                declared);
            // A change made while loading leaves the cache empty, so the next reader loads again.
            if (Interlocked.Read(ref _generation) == generation)
            {
                Volatile.Write(ref _declarationCount, declared.Count);
                Volatile.Write(ref _loadedAt, Environment.TickCount64);
                Volatile.Write(ref _snapshot, snapshot);
            }

            return snapshot;
        }
        finally
        {
            _loadGate.Release();
        }
    }

    // A plugin that declared entities since the snapshot was built (plugins start after the store) makes it stale at once.
    private bool Fresh() => Environment.TickCount64 - Volatile.Read(ref _loadedAt) < (long)MaxAge.TotalMilliseconds
                            && DeclarationCount() == Volatile.Read(ref _declarationCount);

    /// <summary>Drops the cached model; called after every change made through the administration.</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref _generation);
        Volatile.Write(ref _snapshot, null);
    }

    private static async Task<List<T>> AllAsync<T>(IEntitySet<T> set, CancellationToken cancellationToken) where T : class, IEntity
    {
        var all = new List<T>();
        string? after = null;
        while (true)
        {
            var page = await set.ListAsync(1000, after, cancellationToken);
            all.AddRange(page);
            if (page.Count < 1000)
            {
                return all;
            }

            after = page[^1].Id;
        }
    }

    /// <summary>The security collections, acting as one actor.</summary>
    internal sealed class Sets(ICrmStore store)
    {
        public ICrmStore Store { get; } = store;
        public IEntitySet<SecurityUser> Users { get; } = store.Collection<SecurityUser>(UsersName);
        public IEntitySet<SecurityTeam> Teams { get; } = store.Collection<SecurityTeam>(TeamsName);
        public IEntitySet<BusinessUnit> Units { get; } = store.Collection<BusinessUnit>(UnitsName);
        public IEntitySet<SecurityRole> Roles { get; } = store.Collection<SecurityRole>(RolesName);
        public IEntitySet<RecordShare> Shares { get; } = store.Collection<RecordShare>(SharesName);
        public IEntitySet<ProtectedFields> Fields { get; } = store.Collection<ProtectedFields>(FieldsName);
    }
}

/// <summary>
/// One consistent view of users, teams, units, roles, shares and protected fields, with the lookups the evaluator needs
/// precomputed (unit subtrees, team members, shares per principal). Immutable; a change builds a new one.
/// </summary>
public sealed class SecuritySnapshot
{
    private readonly Dictionary<string, List<string>> _children = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FrozenSet<string>> _subtrees = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, AccessProfile> _profiles = new(StringComparer.Ordinal);

    internal SecuritySnapshot(IEnumerable<SecurityUser> users, IEnumerable<SecurityTeam> teams, IEnumerable<BusinessUnit> units,
        IEnumerable<SecurityRole> roles, IEnumerable<RecordShare> shares, IEnumerable<ProtectedFields> fields,
        IEnumerable<EntityDeclaration>? declared = null)
    {
        DeclaredEntities = (declared ?? []).GroupBy(d => d.Entity, StringComparer.Ordinal).ToFrozenDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
        // Protected fields of the seed file and of plugin declarations add up (a declaration can only protect more).
        fields = fields.Select(f => f.Id).Union(DeclaredEntities.Keys, StringComparer.Ordinal)
            .Select(entity => new ProtectedFields
            {
                Id = entity,
                Fields = fields.Where(f => f.Id == entity).SelectMany(f => f.Fields)
                    .Concat(DeclaredEntities.TryGetValue(entity, out var d) ? d.ProtectedFields : [])
                    .Distinct(StringComparer.OrdinalIgnoreCase).ToList(),
            }).ToList();
        Users = users.ToFrozenDictionary(u => u.Id, StringComparer.Ordinal);
        Teams = teams.ToFrozenDictionary(t => t.Id, StringComparer.Ordinal);
        Units = units.ToFrozenDictionary(u => u.Id, StringComparer.Ordinal);
        Roles = roles.ToFrozenDictionary(r => r.Id, StringComparer.Ordinal);
        Shares = shares.ToFrozenDictionary(s => s.Id, StringComparer.Ordinal);
        ProtectedFields = fields.ToFrozenDictionary(f => f.Id, f => (IReadOnlySet<string>)f.Fields.ToFrozenSet(StringComparer.OrdinalIgnoreCase), StringComparer.Ordinal);
        RootUnit = Units.Values.Where(u => u.Parent is null).Select(u => u.Id).Order(StringComparer.Ordinal).FirstOrDefault();
        foreach (var unit in Units.Values.Where(u => u.Parent is not null))
        {
            (_children.TryGetValue(unit.Parent!, out var list) ? list : _children[unit.Parent!] = []).Add(unit.Id);
        }

        foreach (var unit in Units.Keys)
        {
            var set = new HashSet<string>(StringComparer.Ordinal);
            var queue = new Queue<string>([unit]);
            while (queue.TryDequeue(out var next))
            {
                if (set.Add(next) && _children.TryGetValue(next, out var kids))
                {
                    kids.ForEach(queue.Enqueue);
                }
            }

            _subtrees[unit] = set.ToFrozenSet(StringComparer.Ordinal);
        }

        TeamMembers = Users.Values.SelectMany(u => u.Teams.Select(t => (Team: t, User: u.Id)))
            .GroupBy(p => p.Team, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(p => p.User).Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        SharesByPrincipal = Shares.Values.SelectMany(s => s.Grants.Select(g => (g.Principal, Share: s)))
            .GroupBy(p => p.Principal, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => (IReadOnlyList<RecordShare>)g.Select(p => p.Share).ToList(), StringComparer.Ordinal);
    }

    public IReadOnlyDictionary<string, SecurityUser> Users { get; }
    public IReadOnlyDictionary<string, SecurityTeam> Teams { get; }
    public IReadOnlyDictionary<string, BusinessUnit> Units { get; }
    public IReadOnlyDictionary<string, SecurityRole> Roles { get; }

    /// <summary>Shares by <see cref="RecordShare.IdOf"/>.</summary>
    public IReadOnlyDictionary<string, RecordShare> Shares { get; }

    /// <summary>Entities plugins declared through the SDK (<c>IPluginBuilder.DeclareEntity</c>): owner field and protected fields.</summary>
    public IReadOnlyDictionary<string, EntityDeclaration> DeclaredEntities { get; }

    /// <summary>A record of any entity as the evaluator needs it; the owner is read from the declared owner field (default <c>owner</c>).</summary>
    public RecordRef RecordOf(string entity, string id, System.Text.Json.Nodes.JsonObject record) =>
        new(entity, id, DeclaredRecords.OwnerOf(this, entity, record));

    /// <summary>entity → its protected fields, from the seed file and plugin declarations (compared ignoring case).</summary>
    public IReadOnlyDictionary<string, IReadOnlySet<string>> ProtectedFields { get; }

    /// <summary>The unit without a parent (the organisation); records without a known owner belong to it.</summary>
    public string? RootUnit { get; }

    /// <summary>team id → ids of its members.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> TeamMembers { get; }

    /// <summary><c>user:id</c> / <c>team:id</c> → the records shared with it.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<RecordShare>> SharesByPrincipal { get; }

    /// <summary>The unit and every unit below it.</summary>
    public IReadOnlySet<string> Subtree(string unit) => _subtrees.TryGetValue(unit, out var set) ? set : FrozenSet<string>.Empty;

    /// <summary>The business unit of a record: its owner's (user or team) unit, else the root unit.</summary>
    public string? UnitOfOwner(string? owner)
    {
        if (owner is null)
        {
            return RootUnit;
        }

        if (Owners.IsTeam(owner, out var team))
        {
            return Teams.TryGetValue(team, out var t) ? t.BusinessUnit : RootUnit;
        }

        return Users.TryGetValue(owner, out var u) ? u.BusinessUnit : RootUnit;
    }

    internal AccessProfile ProfileOf(SecurityUser user) => _profiles.GetOrAdd(user.Id, _ => new AccessProfile(this, user));

    /// <summary>Query filters are computed once per user, entity and privilege for this snapshot (it never changes).</summary>
    internal System.Collections.Concurrent.ConcurrentDictionary<(string User, string Entity, Privilege Privilege), QueryFilter> Filters { get; } = new();
}
