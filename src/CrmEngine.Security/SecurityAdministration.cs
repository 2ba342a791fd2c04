using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security;

/// <summary>What a seed run did.</summary>
public sealed record SeedResult(int Created, int Updated, int Unchanged, IReadOnlyList<string> Changes)
{
    public string ToText(string path) =>
        $"{path}: {Created} created, {Updated} updated, {Unchanged} unchanged\n" + string.Concat(Changes.Select(c => "  " + c + "\n"));
}

/// <summary>The changes a user record accepts (null members are left as they are).</summary>
public sealed record UserChanges(string? Name = null, string? Email = null, string? Unit = null, string? Manager = null, string? Locale = null,
    string? TimeZone = null, string? Calendar = null, UserKind? Kind = null);

/// <summary>
/// Every change to the access model, and the access contexts readers ask for. Writes go through the pipeline acting as
/// the given actor (the audit log and change feed name who changed a role, team or user); each call checks references
/// (units, roles, teams, manager) first and refuses with a message naming the record and field, storing nothing.
/// </summary>
public sealed class SecurityAdministration
{
    /// <summary>The named system users the engine's own writers map to (seeded by the shipped file).</summary>
    public static class SystemUsers
    {
        public const string Rules = "sys-rules";
        public const string Plugins = "sys-plugins";
        public const string Import = "sys-import";
        public const string Scheduler = "sys-scheduler";
        public const string Mail = "sys-mail";
        public const string Api = "sys-api";
        public const string Engine = "sys-engine";
    }

    private readonly SecurityDirectory _directory;

    public SecurityAdministration(SecurityDirectory directory) => _directory = directory ?? throw new ArgumentNullException(nameof(directory));

    public SecurityDirectory Directory => _directory;

    /// <summary>The access of <paramref name="userId"/>, narrowed by an API key's <paramref name="scope"/> when given.</summary>
    public async Task<AccessContext> ContextForAsync(string userId, ApiScope? scope = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userId);
        return new AccessContext(await _directory.SnapshotAsync(cancellationToken), userId, scope);
    }

    /// <summary>
    /// The user an actor string (as the audit log and change feed record it) stands for: a user id, <c>user:id</c>,
    /// <c>import:user</c> / <c>merge:user</c> (the person running it, when a user), else the named system user of the writer
    /// (rules, plugins, imports, scheduler, mail, API, engine).
    /// </summary>
    public static string UserForActor(string actor, SecuritySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(snapshot);
        // A bare engine actor (mail, unsubscribe ...) is the engine even where an old store holds a user of that name.
        if (snapshot.Users.ContainsKey(actor) && !ReservedUsers.EngineActors.Contains(actor))
        {
            return actor;
        }

        var colon = actor.IndexOf(':', StringComparison.Ordinal);
        var (kind, rest) = colon < 0 ? (actor, "") : (actor[..colon], actor[(colon + 1)..]);
        return kind switch
        {
            "user" or "import" or "merge" or "erase" when snapshot.Users.ContainsKey(rest) => rest,
            "import" => SystemUsers.Import,
            "rule" or "rules" => SystemUsers.Rules,
            "system" when rest.StartsWith("rules", StringComparison.Ordinal) => SystemUsers.Rules,
            "plugin" => SystemUsers.Plugins,
            "job" or "scheduler" => SystemUsers.Scheduler,
            "system" when rest.StartsWith("sched", StringComparison.Ordinal) => SystemUsers.Scheduler,
            "mail" or "unsubscribe" => SystemUsers.Mail,
            "apikey" => SystemUsers.Api,
            _ => SystemUsers.Engine,
        };
    }

    // ------------------------------------------------------------------ seed

    /// <summary>
    /// Applies a seed file. Roles and protected fields follow the file (created or updated to match it); units, teams and
    /// users are created when missing and otherwise left as the CLI last changed them. Running it again changes nothing.
    /// </summary>
    public async Task<SeedResult> SeedAsync(SeedFile seed, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(seed);
        var snapshot = await _directory.SnapshotAsync(cancellationToken);
        CheckSeed(seed, snapshot);
        var sets = _directory.For(actor);
        var changes = new List<string>();
        int created = 0, updated = 0, unchanged = 0;

        void Count(string? change)
        {
            if (change is null)
            {
                unchanged++;
                return;
            }

            changes.Add(change);
            if (change.StartsWith("created", StringComparison.Ordinal))
            {
                created++;
            }
            else
            {
                updated++;
            }
        }

        try
        {
            foreach (var (entity, fields) in seed.ProtectedFields.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                var wanted = new ProtectedFields { Id = entity, Fields = fields.Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal).ToList() };
                Count(await UpsertAsync(sets.Fields, wanted, $"protected fields of {entity}", (a, b) => a.Fields.SequenceEqual(b.Fields), cancellationToken));
            }

            foreach (var unit in ParentsFirst(seed.Units))
            {
                Count(await CreateMissingAsync(sets.Units, unit, $"unit {unit.Id}", cancellationToken));
            }

            foreach (var role in seed.Roles)
            {
                Count(await UpsertAsync(sets.Roles, role, $"role {role.Id}", SameRole, cancellationToken));
            }

            foreach (var team in seed.Teams)
            {
                Count(await CreateMissingAsync(sets.Teams, team, $"team {team.Id}", cancellationToken));
            }

            foreach (var user in seed.Users)
            {
                Count(await CreateMissingAsync(sets.Users, user, $"user {user.Id}", cancellationToken));
            }
        }
        finally
        {
            _directory.Invalidate();
        }

        return new SeedResult(created, updated, unchanged, changes);
    }

    private static void CheckSeed(SeedFile seed, SecuritySnapshot snapshot)
    {
        var errors = new List<string>();
        var units = seed.Units.Select(u => u.Id).Concat(snapshot.Units.Keys).ToHashSet(StringComparer.Ordinal);
        var roles = seed.Roles.Select(r => r.Id).Concat(snapshot.Roles.Keys).ToHashSet(StringComparer.Ordinal);
        var teams = seed.Teams.Select(t => t.Id).Concat(snapshot.Teams.Keys).ToHashSet(StringComparer.Ordinal);
        var users = seed.Users.Select(u => u.Id).Concat(snapshot.Users.Keys).ToHashSet(StringComparer.Ordinal);
        Duplicates(seed.Units.Select(u => u.Id), "units", errors);
        Duplicates(seed.Roles.Select(u => u.Id), "roles", errors);
        Duplicates(seed.Teams.Select(u => u.Id), "teams", errors);
        Duplicates(seed.Users.Select(u => u.Id), "users", errors);
        var roots = seed.Units.Where(u => u.Parent is null).Select(u => u.Id).Concat(snapshot.Units.Values.Where(u => u.Parent is null).Select(u => u.Id))
            .Distinct(StringComparer.Ordinal).ToList();
        if (roots.Count > 1)
        {
            errors.Add($"units: only one unit may have no parent (the organisation); found {string.Join(", ", roots)}");
        }

        foreach (var u in seed.Units.Where(u => u.Parent is not null && !units.Contains(u.Parent)))
        {
            errors.Add($"units ({u.Id}).parent: no unit '{u.Parent}'");
        }

        if (seed.Units.Count > 0 && ParentsFirst(seed.Units).Count != seed.Units.Count)
        {
            errors.Add("units: the parents form a cycle");
        }

        foreach (var t in seed.Teams)
        {
            Refs(t.BusinessUnit, units, $"teams ({t.Id}).unit", "unit", errors);
            t.Roles.ForEach(r => Refs(r, roles, $"teams ({t.Id}).roles", "role", errors));
        }

        foreach (var u in seed.Users)
        {
            Refs(u.BusinessUnit, units, $"users ({u.Id}).unit", "unit", errors);
            u.Roles.ForEach(r => Refs(r, roles, $"users ({u.Id}).roles", "role", errors));
            u.Teams.ForEach(t => Refs(t, teams, $"users ({u.Id}).teams", "team", errors));
            if (u.Manager is not null)
            {
                Refs(u.Manager, users, $"users ({u.Id}).manager", "user", errors);
            }
        }

        if (errors.Count > 0)
        {
            throw new SecurityAdminException($"{seed.Path}: {errors.Count} problem(s), nothing stored:\n  " + string.Join("\n  ", errors));
        }
    }

    private static void Duplicates(IEnumerable<string> ids, string at, List<string> errors) =>
        errors.AddRange(ids.GroupBy(i => i, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => $"{at}: id '{g.Key}' appears {g.Count()} times"));

    private static void Refs(string id, HashSet<string> known, string at, string what, List<string> errors)
    {
        if (!known.Contains(id))
        {
            errors.Add($"{at}: no {what} '{id}'");
        }
    }

    private static List<BusinessUnit> ParentsFirst(List<BusinessUnit> units)
    {
        var ordered = new List<BusinessUnit>();
        var placed = new HashSet<string>(StringComparer.Ordinal);
        var ids = units.Select(u => u.Id).ToHashSet(StringComparer.Ordinal);
        var left = units.ToList();
        while (left.Count > 0)
        {
            var ready = left.Where(u => u.Parent is null || !ids.Contains(u.Parent) || placed.Contains(u.Parent)).ToList();
            if (ready.Count == 0)
            {
                break;
            }

            ready.ForEach(u => placed.Add(u.Id));
            ordered.AddRange(ready);
            left.RemoveAll(ready.Contains);
        }

        return ordered;
    }

    private static bool SameRole(SecurityRole a, SecurityRole b) =>
        a.Name == b.Name && a.Description == b.Description &&
        a.Privileges.Count == b.Privileges.Count &&
        a.Privileges.All(p => b.Privileges.TryGetValue(p.Key, out var other) && p.Value.Count == other.Count && p.Value.All(x => other.TryGetValue(x.Key, out var d) && d == x.Value)) &&
        a.Fields.Count == b.Fields.Count &&
        a.Fields.All(f => b.Fields.TryGetValue(f.Key, out var o) && o.Read == f.Value.Read && o.Write == f.Value.Write);

    private static async Task<string?> UpsertAsync<T>(IEntitySet<T> set, T wanted, string what, Func<T, T, bool> same, CancellationToken ct) where T : Entity
    {
        var stored = await set.GetAsync(wanted.Id, ct);
        if (stored is null)
        {
            await set.CreateAsync(wanted, ct);
            return "created " + what;
        }

        if (same(stored, wanted))
        {
            return null;
        }

        wanted.Version = stored.Version;
        await set.UpdateAsync(wanted, ct);
        return "updated " + what + " to match the file";
    }

    private static async Task<string?> CreateMissingAsync<T>(IEntitySet<T> set, T wanted, string what, CancellationToken ct) where T : Entity
    {
        if (await set.GetAsync(wanted.Id, ct) is not null)
        {
            return null;
        }

        await set.CreateAsync(wanted, ct);
        return "created " + what;
    }

    // ------------------------------------------------------------------ users

    public async Task<SecurityUser> CreateUserAsync(SecurityUser user, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var snapshot = await _directory.SnapshotAsync(cancellationToken);
        if ((SecurityNames.Check(user.Id) ?? ReservedUsers.Problem(user.Id, user.Kind)) is { } bad)
        {
            throw new SecurityAdminException($"user id: {bad}", "id");
        }

        if (snapshot.Users.ContainsKey(user.Id))
        {
            throw new SecurityConflictException($"user '{user.Id}' already exists (crm users update changes it)");
        }

        if (string.IsNullOrWhiteSpace(user.Name))
        {
            throw new SecurityAdminException($"user '{user.Id}': --name is required", "name");
        }

        CheckUser(user, snapshot);
        return await ChangeAsync(s => s.Users.CreateAsync(user, cancellationToken), actor);
    }

    public Task<SecurityUser> UpdateUserAsync(string id, UserChanges changes, string actor, CancellationToken cancellationToken = default) =>
        EditUserAsync(id, actor, (u, snapshot) =>
        {
            u.Name = changes.Name ?? u.Name;
            u.Email = changes.Email ?? u.Email;
            u.BusinessUnit = changes.Unit ?? u.BusinessUnit;
            u.Manager = changes.Manager ?? u.Manager;
            u.Locale = changes.Locale ?? u.Locale;
            u.TimeZone = changes.TimeZone ?? u.TimeZone;
            u.Calendar = changes.Calendar ?? u.Calendar;
            if (changes.Kind is { } kind && kind != u.Kind && ReservedUsers.Problem(u.Id, kind) is { } reserved)
            {
                throw new SecurityAdminException($"user '{u.Id}': --kind {kind.ToString().ToLowerInvariant()}: {reserved}", "kind");
            }

            u.Kind = changes.Kind ?? u.Kind;
            CheckUser(u, snapshot);
        }, cancellationToken);

    /// <summary>Deactivates a user: every access check refuses them from now on; records and history keep the id and name.</summary>
    public Task<SecurityUser> DeactivateUserAsync(string id, string actor, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        EditUserAsync(id, actor, (u, _) =>
        {
            if (!u.Deactivated)
            {
                u.Deactivated = true;
                u.DeactivatedAt = now;
            }
        }, cancellationToken);

    public Task<SecurityUser> ActivateUserAsync(string id, string actor, CancellationToken cancellationToken = default) =>
        EditUserAsync(id, actor, (u, _) =>
        {
            u.Deactivated = false;
            u.DeactivatedAt = null;
        }, cancellationToken);

    public Task<SecurityUser> AddUserRoleAsync(string id, string role, string actor, CancellationToken cancellationToken = default) =>
        EditUserAsync(id, actor, (u, s) => AddTo(u.Roles, role, s.Roles.ContainsKey(role), "role", "crm roles list"), cancellationToken);

    public Task<SecurityUser> RemoveUserRoleAsync(string id, string role, string actor, CancellationToken cancellationToken = default) =>
        EditUserAsync(id, actor, (u, _) => RemoveFrom(u.Roles, role, $"user '{id}' has no role '{role}'", "role"), cancellationToken);

    public Task<SecurityUser> AddTeamMemberAsync(string team, string user, string actor, CancellationToken cancellationToken = default) =>
        EditUserAsync(user, actor, (u, s) => AddTo(u.Teams, team, s.Teams.ContainsKey(team), "team", "crm teams list"), cancellationToken);

    public Task<SecurityUser> RemoveTeamMemberAsync(string team, string user, string actor, CancellationToken cancellationToken = default) =>
        EditUserAsync(user, actor, (u, _) => RemoveFrom(u.Teams, team, $"user '{user}' is not in team '{team}'", "team"), cancellationToken);

    private static void AddTo(List<string> list, string id, bool exists, string what, string hint)
    {
        if (!exists)
        {
            throw new SecurityNotFoundException($"there is no {what} '{id}' ({hint} shows them)");
        }

        if (!list.Contains(id, StringComparer.Ordinal))
        {
            list.Add(id);
        }
    }

    private static void RemoveFrom(List<string> list, string id, string missing, string field)
    {
        if (list.RemoveAll(x => x == id) == 0)
        {
            throw new SecurityAdminException(missing, field);
        }
    }

    private static void CheckUser(SecurityUser u, SecuritySnapshot snapshot)
    {
        if (!snapshot.Units.ContainsKey(u.BusinessUnit))
        {
            throw new SecurityAdminException($"user '{u.Id}': there is no unit '{u.BusinessUnit}' (crm units list shows them)", "unit");
        }

        if (u.Manager is { Length: > 0 } m && (m == u.Id || !snapshot.Users.ContainsKey(m)))
        {
            throw new SecurityAdminException($"user '{u.Id}': manager '{m}' is not another user", "manager");
        }

        foreach (var r in u.Roles.Where(r => !snapshot.Roles.ContainsKey(r)))
        {
            throw new SecurityAdminException($"user '{u.Id}': there is no role '{r}' (crm roles list shows them)", "roles");
        }

        foreach (var t in u.Teams.Where(t => !snapshot.Teams.ContainsKey(t)))
        {
            throw new SecurityAdminException($"user '{u.Id}': there is no team '{t}' (crm teams list shows them)", "teams");
        }
    }

    private async Task<SecurityUser> EditUserAsync(string id, string actor, Action<SecurityUser, SecuritySnapshot> edit, CancellationToken ct)
    {
        var snapshot = await _directory.SnapshotAsync(ct);
        return await ChangeAsync(async sets =>
        {
            var user = await sets.Users.GetAsync(id, ct) ?? throw new SecurityNotFoundException($"there is no user '{id}' (crm users list shows them)");
            edit(user, snapshot);
            return await sets.Users.UpdateAsync(user, ct);
        }, actor);
    }

    // ------------------------------------------------------------------ teams and units

    public async Task<SecurityTeam> CreateTeamAsync(SecurityTeam team, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(team);
        var snapshot = await _directory.SnapshotAsync(cancellationToken);
        if (SecurityNames.Check(team.Id) is { } bad)
        {
            throw new SecurityAdminException($"team id: {bad}", "id");
        }

        if (snapshot.Teams.ContainsKey(team.Id))
        {
            throw new SecurityConflictException($"team '{team.Id}' already exists");
        }

        CheckTeam(team, snapshot);
        return await ChangeAsync(s => s.Teams.CreateAsync(team, cancellationToken), actor);
    }

    public Task<SecurityTeam> AddTeamRoleAsync(string id, string role, string actor, CancellationToken cancellationToken = default) =>
        EditTeamAsync(id, actor, (t, s) => AddTo(t.Roles, role, s.Roles.ContainsKey(role), "role", "crm roles list"), cancellationToken);

    public Task<SecurityTeam> RemoveTeamRoleAsync(string id, string role, string actor, CancellationToken cancellationToken = default) =>
        EditTeamAsync(id, actor, (t, _) => RemoveFrom(t.Roles, role, $"team '{id}' has no role '{role}'", "role"), cancellationToken);

    private async Task<SecurityTeam> EditTeamAsync(string id, string actor, Action<SecurityTeam, SecuritySnapshot> edit, CancellationToken ct)
    {
        var snapshot = await _directory.SnapshotAsync(ct);
        return await ChangeAsync(async sets =>
        {
            var team = await sets.Teams.GetAsync(id, ct) ?? throw new SecurityNotFoundException($"there is no team '{id}' (crm teams list shows them)");
            edit(team, snapshot);
            CheckTeam(team, snapshot);
            return await sets.Teams.UpdateAsync(team, ct);
        }, actor);
    }

    private static void CheckTeam(SecurityTeam team, SecuritySnapshot snapshot)
    {
        if (string.IsNullOrWhiteSpace(team.Name))
        {
            throw new SecurityAdminException($"team '{team.Id}': --name is required", "name");
        }

        if (!snapshot.Units.ContainsKey(team.BusinessUnit))
        {
            throw new SecurityAdminException($"team '{team.Id}': there is no unit '{team.BusinessUnit}' (crm units list shows them)", "unit");
        }
    }

    public async Task<BusinessUnit> CreateUnitAsync(BusinessUnit unit, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(unit);
        var snapshot = await _directory.SnapshotAsync(cancellationToken);
        if (SecurityNames.Check(unit.Id) is { } bad)
        {
            throw new SecurityAdminException($"unit id: {bad}", "id");
        }

        if (snapshot.Units.ContainsKey(unit.Id))
        {
            throw new SecurityConflictException($"unit '{unit.Id}' already exists");
        }

        if (unit.Parent is null ? snapshot.RootUnit is not null : !snapshot.Units.ContainsKey(unit.Parent))
        {
            throw new SecurityAdminException(unit.Parent is null
                ? $"unit '{unit.Id}': --parent is required (the root unit is '{snapshot.RootUnit}')"
                : $"unit '{unit.Id}': there is no parent unit '{unit.Parent}'", "parent");
        }

        return await ChangeAsync(s => s.Units.CreateAsync(unit, cancellationToken), actor);
    }

    // ------------------------------------------------------------------ shares

    /// <summary>Shares a record with <c>user:id</c> or <c>team:id</c> for the given privileges (replacing that principal's earlier grant).</summary>
    public async Task<RecordShare> ShareAsync(string entity, string recordId, string principal, IReadOnlyCollection<Privilege> privileges, string actor,
        CancellationToken cancellationToken = default)
    {
        var snapshot = await _directory.SnapshotAsync(cancellationToken);
        CheckPrincipal(principal, snapshot);
        if (privileges.Count == 0 || privileges.Contains(Privilege.Create))
        {
            throw new SecurityAdminException("a share grants one or more of read, write, delete, assign, share, export", "privileges");
        }

        return await ChangeAsync(async sets =>
        {
            var id = RecordShare.IdOf(entity, recordId);
            var share = await sets.Shares.GetAsync(id, cancellationToken);
            var grant = new ShareGrant { Principal = principal, Privileges = privileges.Distinct().Order().ToList() };
            if (share is null)
            {
                return await sets.Shares.CreateAsync(new RecordShare { Id = id, Entity = entity, RecordId = recordId, Grants = [grant] }, cancellationToken);
            }

            share.Grants.RemoveAll(g => g.Principal == principal);
            share.Grants.Add(grant);
            return await sets.Shares.UpdateAsync(share, cancellationToken);
        }, actor);
    }

    /// <summary>Removes <paramref name="principal"/>'s grant on a record; false when there was none.</summary>
    public async Task<bool> UnshareAsync(string entity, string recordId, string principal, string actor, CancellationToken cancellationToken = default) =>
        await ChangeAsync(async sets =>
        {
            var share = await sets.Shares.GetAsync(RecordShare.IdOf(entity, recordId), cancellationToken);
            if (share is null || share.Grants.RemoveAll(g => g.Principal == principal) == 0)
            {
                return false;
            }

            if (share.Grants.Count == 0)
            {
                await sets.Shares.DeleteAsync(share.Id, share.Version, cancellationToken);
            }
            else
            {
                await sets.Shares.UpdateAsync(share, cancellationToken);
            }

            return true;
        }, actor);

    private static void CheckPrincipal(string principal, SecuritySnapshot snapshot)
    {
        var ok = principal.StartsWith("user:", StringComparison.Ordinal) ? snapshot.Users.ContainsKey(principal[5..])
            : principal.StartsWith("team:", StringComparison.Ordinal) && snapshot.Teams.ContainsKey(principal[5..]);
        if (!ok)
        {
            throw new SecurityAdminException($"'{principal}' is not an existing user:<id> or team:<id>", "principal");
        }
    }

    private async Task<T> ChangeAsync<T>(Func<SecurityDirectory.Sets, Task<T>> change, string actor)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        try
        {
            return await change(_directory.For(actor));
        }
        catch (ValidationException ex)
        {
            throw new SecurityAdminException(ex.Message);
        }
        finally
        {
            _directory.Invalidate();
        }
    }
}
