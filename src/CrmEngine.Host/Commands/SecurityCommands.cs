using System.CommandLine;
using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Host.Commands;

/// <summary>
/// The access model from the command line: <c>crm security seed</c>, <c>crm users|teams|roles|units ...</c>,
/// <c>crm shares ...</c> and <c>crm owners transfer</c>. Every verb becomes one <see cref="Call"/>: while the service runs
/// it goes over the control channel (<c>POST /security</c>), when it is stopped the command starts the engine in this
/// process (so an ownership transfer passes the same pipeline: rules, plugins, audit) and runs it there.
/// Changes act as <c>--as</c> (default <c>admin</c>), who must be an active administrator; the audit log names them.
/// </summary>
internal static class SecurityCommands
{
    public sealed record Call(string Verb, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string[]> Options);

    public sealed record Answer(string Text, bool Ok);

    private static readonly string[] CoreEntities = [EntityNames.Customer, EntityNames.Activity, EntityNames.Order, EntityNames.Product, EntityNames.Consent];

    public static IEnumerable<Command> Build() => [Security(), Users(), Teams(), Roles(), Units(), Shares(), Owners()];

    /// <summary>The one control-channel route of these verbs.</summary>
    public static void MapControl(WebApplication app, IServiceProvider services) =>
        app.MapPost("/security", async (Call call, CancellationToken ct) => Results.Json(await ExecuteAsync(services, call, ct), ControlJson.Options));

    // ------------------------------------------------------------------ verbs

    private static Command Security()
    {
        var security = new Command("security", "The access model: seed it from a file, explain a decision.");
        security.Subcommands.Add(Leaf("security seed", "seed", "Creates units, roles, teams and users from a seed file (default: security.json in the content root); roles follow the file. Safe to run again.",
            [Arg("file", "The seed file.", optional: true)]));
        security.Subcommands.Add(Leaf("security explain", "explain", "Says whether a user may do something to a record, and why (the missing privilege when not).",
            [Arg("user", "User id."), Arg("privilege", "create, read, write, delete, assign, share or export."), Arg("entity", "customer, activity, order, ... or a plugin entity."), Arg("owner", "The record's owner (user id or team:<id>); leave out for an unowned record.", optional: true)],
            ["--id"]));
        return security;
    }

    private static Command Users()
    {
        string[] fields = ["--name", "--email", "--unit", "--kind", "--manager", "--locale", "--time-zone", "--calendar"];
        var users = new Command("users", "Users: people, integration accounts and system users. Deactivated, never deleted.");
        users.Subcommands.Add(Leaf("users list", "list", "Every user: id, name, kind, unit, roles, teams, state."));
        users.Subcommands.Add(Leaf("users show", "show", "One user with what their roles add up to per entity.", [Arg("user", "User id.")]));
        users.Subcommands.Add(Leaf("users create", "create", "Creates a user (--name and --unit required; --role and --team may repeat).", [Arg("user", "User id (as records' Owner holds it).")],
            [.. fields], ["--role", "--team"]));
        users.Subcommands.Add(Leaf("users update", "update", "Changes the given fields of a user.", [Arg("user", "User id.")], [.. fields]));
        users.Subcommands.Add(Leaf("users deactivate", "deactivate", "Refuses the user everything from now on; their records and history keep the id (see crm owners transfer).", [Arg("user", "User id.")]));
        users.Subcommands.Add(Leaf("users activate", "activate", "Undoes deactivate.", [Arg("user", "User id.")]));
        users.Subcommands.Add(Leaf("users add-role", "add-role", "Gives a user a role.", [Arg("user", "User id."), Arg("role", "Role id (crm roles list).")]));
        users.Subcommands.Add(Leaf("users remove-role", "remove-role", "Takes a role from a user.", [Arg("user", "User id."), Arg("role", "Role id.")]));
        return users;
    }

    private static Command Teams()
    {
        var teams = new Command("teams", "Teams: members get the team's roles; records can be owned by a team (owner team:<id>).");
        teams.Subcommands.Add(Leaf("teams list", "list", "Every team: id, name, unit, roles, members."));
        teams.Subcommands.Add(Leaf("teams create", "create", "Creates a team.", [Arg("team", "Team id.")], ["--name", "--unit", "--description"]));
        teams.Subcommands.Add(Leaf("teams add-member", "add-member", "Puts a user in a team.", [Arg("team", "Team id."), Arg("user", "User id.")]));
        teams.Subcommands.Add(Leaf("teams remove-member", "remove-member", "Takes a user out of a team.", [Arg("team", "Team id."), Arg("user", "User id.")]));
        teams.Subcommands.Add(Leaf("teams add-role", "add-role", "Gives a team (all its members) a role.", [Arg("team", "Team id."), Arg("role", "Role id.")]));
        teams.Subcommands.Add(Leaf("teams remove-role", "remove-role", "Takes a role from a team.", [Arg("team", "Team id."), Arg("role", "Role id.")]));
        return teams;
    }

    private static Command Roles()
    {
        var roles = new Command("roles", "Roles (defined in the seed file; crm security seed applies changes).");
        roles.Subcommands.Add(Leaf("roles list", "list", "Every role with its description."));
        roles.Subcommands.Add(Leaf("roles show", "show", "A role's privileges per entity and its field rights.", [Arg("role", "Role id.")]));
        return roles;
    }

    private static Command Units()
    {
        var units = new Command("units", "Business units (a tree under the organisation).");
        units.Subcommands.Add(Leaf("units list", "list", "The unit tree with the users and teams in each unit."));
        units.Subcommands.Add(Leaf("units create", "create", "Creates a unit below --parent.", [Arg("unit", "Unit id.")], ["--name", "--parent"]));
        return units;
    }

    private static Command Shares()
    {
        var shares = new Command("shares", "Share one record with a user or team beyond what their roles reach.");
        Argument[] record = [Arg("entity", "customer, activity, order, ..."), Arg("id", "Record id."), Arg("principal", "user:<id> or team:<id>.")];
        shares.Subcommands.Add(Leaf("shares add", "add", "Shares a record (--privileges read,write,...; default read).", record, ["--privileges"]));
        shares.Subcommands.Add(Leaf("shares remove", "remove", "Takes a share back.", record));
        shares.Subcommands.Add(Leaf("shares list", "list", "Who a record is shared with.", [Arg("entity", "Entity."), Arg("id", "Record id.")]));
        return shares;
    }

    private static Command Owners()
    {
        var owners = new Command("owners", "Record ownership.");
        owners.Subcommands.Add(Leaf("owners transfer", "transfer",
            "Gives a user's customers, with their activities and orders, to another user or team: one audited write per record, resumable (run it again after an interruption).",
            [], ["--from", "--to"], flags: ["--only-open"]));
        return owners;
    }

    private static Argument<string> Arg(string name, string description, bool optional = false) =>
        new(name) { Description = description, Arity = optional ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne };

    /// <summary>A leaf verb: its arguments, single-value options, repeatable options and flags become one <see cref="Call"/>.</summary>
    private static Command Leaf(string verb, string name, string description, Argument[]? args = null, string[]? options = null, string[]? lists = null,
        string[]? flags = null)
    {
        var command = new Command(name, description) { TreatUnmatchedTokensAsErrors = false };
        var typedArgs = (args ?? []).Cast<Argument<string>>().ToList();
        typedArgs.ForEach(command.Arguments.Add);
        var single = (options ?? []).Append("--as").Select(o => new Option<string?>(o) { Description = OptionHelp(o) }).ToList();
        var multi = (lists ?? []).Select(o => new Option<string[]>(o) { Description = OptionHelp(o) }).ToList();
        var switches = (flags ?? []).Select(o => new Option<bool>(o) { Description = OptionHelp(o) }).ToList();
        single.ForEach(command.Options.Add);
        multi.ForEach(command.Options.Add);
        switches.ForEach(command.Options.Add);
        command.SetAction((parse, ct) =>
        {
            var values = new Dictionary<string, string[]>(StringComparer.Ordinal);
            single.Where(o => parse.GetValue(o) is not null).ToList().ForEach(o => values[o.Name.TrimStart('-')] = [parse.GetValue(o)!]);
            multi.Where(o => parse.GetValue(o) is { Length: > 0 }).ToList().ForEach(o => values[o.Name.TrimStart('-')] = parse.GetValue(o)!);
            switches.Where(parse.GetValue).ToList().ForEach(o => values[o.Name.TrimStart('-')] = ["true"]);
            var argValues = typedArgs.Select(a => parse.GetValue(a)).Where(v => v is not null).Select(v => v!).ToList();
            return RunAsync(parse, new Call(verb, argValues, values), ct);
        });
        return command;
    }

    private static string OptionHelp(string option) => option switch
    {
        "--as" => "Who does it (an active administrator user; the audit log names them). Default: admin.",
        "--kind" => "person, integration or system.",
        "--unit" => "Business unit id (crm units list).",
        "--role" => "Role id; may repeat.",
        "--team" => "Team id; may repeat.",
        "--privileges" => "Comma-separated: read, write, delete, assign, share, export.",
        "--from" => "The user (or team:<id>) giving the records up; may be deactivated.",
        "--to" => "The active user (or team:<id>) taking them over.",
        "--only-open" => "Only planned activities and orders that are not paid or cancelled (customers always move).",
        "--id" => "The record id (a share of it counts).",
        _ => option.TrimStart('-').Replace('-', ' ') + ".",
    };

    // ------------------------------------------------------------------ running

    private static async Task<int> RunAsync(ParseResult parse, Call call, CancellationToken ct)
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        if (call.Verb == "security seed")
        {
            // Paths are resolved here: the service may run in another folder.
            var file = call.Args.Count > 0 ? Path.GetFullPath(call.Args[0]) : DefaultSeedFile(crm.ContentRoot);
            call = call with { Args = [file] };
        }

        var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
        Answer answer;
        if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
        {
            using var client = new ControlClient(endpoint);
            answer = await client.PostAsync<Call, Answer>("security", call, ct);
        }
        else
        {
            answer = await InProcessAsync(crm, services => ExecuteAsync(services, call, ct), ct);
        }

        if (answer.Ok)
        {
            Console.Write(answer.Text);
            return ExitCodes.Ok;
        }

        await Console.Error.WriteAsync(answer.Text);
        return ExitCodes.Refused;
    }

    private static string DefaultSeedFile(string contentRoot)
    {
        var local = Path.Combine(contentRoot, "security.json");
        return File.Exists(local) ? local : Path.Combine(AppContext.BaseDirectory, "security.json");
    }

    /// <summary>The engine in this process for one command (the service is stopped); the instance lock keeps a service from starting meanwhile.</summary>
    private static async Task<Answer> InProcessAsync(CrmConfiguration crm, Func<IServiceProvider, Task<Answer>> work, CancellationToken ct)
    {
        var errors = ConfigChecker.Check(crm.Root, crm.ContentRoot, AppContext.BaseDirectory).Where(p => ConfigChecker.IsError(p, atStart: true)).ToList();
        if (errors.Count > 0)
        {
            throw new CommandRefusedException(ConfigChecker.Format(errors, atStart: true), ExitCodes.Usage);
        }

        using var instanceLock = InstanceLock.Acquire(AdminCommands.StoreOptionsOf(crm).DataDirectory);
        using var quiet = new NLog.LogFactory();
        using var host = EngineHost.CreateBuilder(crm, quiet).Build();
        await host.StartAsync(ct);
        try
        {
            return await work(host.Services);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Runs one call in the engine (service side of the control channel, or in process).</summary>
    internal static async Task<Answer> ExecuteAsync(IServiceProvider services, Call call, CancellationToken ct)
    {
        var admin = services.GetRequiredService<SecurityAdministration>();
        try
        {
            var actor = Opt(call, "as") ?? "admin";
            if (call.Verb is not ("security seed" or "security explain") && !call.Verb.EndsWith(" list", StringComparison.Ordinal) && !call.Verb.EndsWith(" show", StringComparison.Ordinal))
            {
                var access = await admin.ContextForAsync(actor, null, ct);
                var mayAct = call.Verb == "owners transfer" ? access.Snapshot.Users.TryGetValue(actor, out var u) && !u.Deactivated : access.CanAdministerSecurity;
                if (!mayAct)
                {
                    return new Answer($"--as '{actor}' may not do this: {(access.Snapshot.Users.Count == 0 ? "no users yet (run crm security seed first)" : "an active administrator is needed")}\n", false);
                }
            }

            var text = await DispatchAsync(services, admin, call, actor, ct);
            return new Answer(text, true);
        }
        catch (SecurityAdminException ex)
        {
            return new Answer(ex.Message + "\n", false);
        }
        catch (Abstractions.Store.StoreException ex)
        {
            return new Answer(ex.Message + "\n", false);
        }
    }

    private static async Task<string> DispatchAsync(IServiceProvider services, SecurityAdministration admin, Call call, string actor, CancellationToken ct)
    {
        string A(int i) => call.Args[i];
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        switch (call.Verb)
        {
            case "security seed":
                return (await admin.SeedAsync(SeedFile.Load(A(0)), actor, ct)).ToText(A(0));
            case "security explain":
                var who = await admin.ContextForAsync(A(0), null, ct);
                var privilege = Enum.TryParse<Privilege>(A(1), ignoreCase: true, out var p) && !int.TryParse(A(1), out _)
                    ? p : throw new SecurityAdminException($"'{A(1)}' is not a privilege (create, read, write, delete, assign, share, export)");
                var record = new RecordRef(A(2), Opt(call, "id") ?? "", call.Args.Count > 3 ? A(3) : null);
                return (privilege == Privilege.Create ? who.CheckCreate(record.Entity, record.Owner) : who.Check(privilege, record)) + "\n";

            case "users list":
                return FormatUsers((await admin.Directory.SnapshotAsync(ct)).Users.Values);
            case "users show":
                return await ShowUserAsync(admin, A(0), ct);
            case "users create":
                var created = await admin.CreateUserAsync(new SecurityUser
                {
                    Id = A(0),
                    Name = Opt(call, "name") ?? "",
                    Email = Opt(call, "email"),
                    BusinessUnit = Opt(call, "unit") ?? throw new SecurityAdminException($"user '{A(0)}': --unit is required (crm units list shows them)"),
                    Kind = ParseKind(Opt(call, "kind")) ?? UserKind.Person,
                    Manager = Opt(call, "manager"),
                    Locale = Opt(call, "locale"),
                    TimeZone = Opt(call, "time-zone"),
                    Calendar = Opt(call, "calendar"),
                    Roles = [.. call.Options.GetValueOrDefault("role") ?? []],
                    Teams = [.. call.Options.GetValueOrDefault("team") ?? []],
                }, actor, ct);
                return $"user '{created.Id}' created in unit '{created.BusinessUnit}'\n";
            case "users update":
                await admin.UpdateUserAsync(A(0), new UserChanges(Opt(call, "name"), Opt(call, "email"), Opt(call, "unit"), Opt(call, "manager"), Opt(call, "locale"),
                    Opt(call, "time-zone"), Opt(call, "calendar"), ParseKind(Opt(call, "kind"))), actor, ct);
                return $"user '{A(0)}' updated\n";
            case "users deactivate":
                var off = await admin.DeactivateUserAsync(A(0), actor, time.GetUtcNow(), ct);
                return $"user '{off.Id}' deactivated at {off.DeactivatedAt:u}; their records keep them as owner (crm owners transfer --from {off.Id} --to <user>)\n";
            case "users activate":
                await admin.ActivateUserAsync(A(0), actor, ct);
                return $"user '{A(0)}' is active\n";
            case "users add-role":
                await admin.AddUserRoleAsync(A(0), A(1), actor, ct);
                return $"user '{A(0)}' has role '{A(1)}'\n";
            case "users remove-role":
                await admin.RemoveUserRoleAsync(A(0), A(1), actor, ct);
                return $"user '{A(0)}' no longer has role '{A(1)}'\n";

            case "teams list":
                return FormatTeams(await admin.Directory.SnapshotAsync(ct));
            case "teams create":
                await admin.CreateTeamAsync(new SecurityTeam
                {
                    Id = A(0),
                    Name = Opt(call, "name") ?? "",
                    BusinessUnit = Opt(call, "unit") ?? throw new SecurityAdminException($"team '{A(0)}': --unit is required"),
                    Description = Opt(call, "description"),
                }, actor, ct);
                return $"team '{A(0)}' created\n";
            case "teams add-member":
                await admin.AddTeamMemberAsync(A(0), A(1), actor, ct);
                return $"user '{A(1)}' is in team '{A(0)}'\n";
            case "teams remove-member":
                await admin.RemoveTeamMemberAsync(A(0), A(1), actor, ct);
                return $"user '{A(1)}' is no longer in team '{A(0)}'\n";
            case "teams add-role":
                await admin.AddTeamRoleAsync(A(0), A(1), actor, ct);
                return $"team '{A(0)}' has role '{A(1)}'\n";
            case "teams remove-role":
                await admin.RemoveTeamRoleAsync(A(0), A(1), actor, ct);
                return $"team '{A(0)}' no longer has role '{A(1)}'\n";

            case "roles list":
                return FormatRoles((await admin.Directory.SnapshotAsync(ct)).Roles.Values);
            case "roles show":
                var snapshot = await admin.Directory.SnapshotAsync(ct);
                return snapshot.Roles.TryGetValue(A(0), out var role) ? FormatRole(role, snapshot)
                    : throw new SecurityAdminException($"there is no role '{A(0)}' (crm roles list shows them)");

            case "units list":
                return FormatUnits(await admin.Directory.SnapshotAsync(ct));
            case "units create":
                await admin.CreateUnitAsync(new BusinessUnit { Id = A(0), Name = Opt(call, "name") ?? A(0), Parent = Opt(call, "parent") }, actor, ct);
                return $"unit '{A(0)}' created\n";

            case "shares add":
                var privileges = (Opt(call, "privileges") ?? "read").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(x => Enum.TryParse<Privilege>(x, ignoreCase: true, out var v) && !int.TryParse(x, out _) ? v
                        : throw new SecurityAdminException($"--privileges: '{x}' is not a privilege (read, write, delete, assign, share, export)")).ToList();
                await admin.ShareAsync(A(0), A(1), A(2), privileges, actor, ct);
                return $"{A(0)} '{A(1)}' shared with {A(2)} for {string.Join(", ", privileges.Select(AccessContext.Name))}\n";
            case "shares remove":
                return await admin.UnshareAsync(A(0), A(1), A(2), actor, ct)
                    ? $"{A(0)} '{A(1)}' is no longer shared with {A(2)}\n"
                    : throw new SecurityAdminException($"{A(0)} '{A(1)}' is not shared with {A(2)}");
            case "shares list":
                var shares = await admin.Directory.SnapshotAsync(ct);
                return shares.Shares.TryGetValue(RecordShare.IdOf(A(0), A(1)), out var share)
                    ? string.Concat(share.Grants.Select(g => $"{g.Principal}: {string.Join(", ", g.Privileges.Select(AccessContext.Name))}\n"))
                    : $"{A(0)} '{A(1)}' is not shared\n";

            case "owners transfer":
                var from = Opt(call, "from") ?? throw new SecurityAdminException("--from is required");
                var to = Opt(call, "to") ?? throw new SecurityAdminException("--to is required");
                var result = await services.GetRequiredService<OwnershipTransfer>().TransferAsync(from, to, Opt(call, "only-open") == "true", actor, null, ct);
                return result.ToText();
            default:
                throw new SecurityAdminException($"unknown security verb '{call.Verb}'");
        }
    }

    private static string? Opt(Call call, string name) => call.Options.TryGetValue(name, out var v) && v.Length > 0 ? v[0] : null;

    private static UserKind? ParseKind(string? text) =>
        text is null ? null
        : Enum.TryParse<UserKind>(text, ignoreCase: true, out var kind) && !int.TryParse(text, out _) ? kind
        : throw new SecurityAdminException($"--kind '{text}' is not a kind (person, integration, system)");

    // ------------------------------------------------------------------ output

    private static string FormatUsers(IEnumerable<SecurityUser> users)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"ID",-20} {"NAME",-24} {"KIND",-11} {"UNIT",-14} {"ROLES",-30} {"TEAMS",-20} STATE");
        foreach (var u in users.OrderBy(u => u.Id, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{u.Id,-20} {u.Name,-24} {u.Kind.ToString().ToLowerInvariant(),-11} {u.BusinessUnit,-14} {Join(u.Roles),-30} {Join(u.Teams),-20} {(u.Deactivated ? "deactivated" : "active")}");
        }

        return text.ToString();
    }

    private static async Task<string> ShowUserAsync(SecurityAdministration admin, string id, CancellationToken ct)
    {
        var access = await admin.ContextForAsync(id, null, ct);
        if (!access.Snapshot.Users.TryGetValue(id, out var u))
        {
            throw new SecurityAdminException($"there is no user '{id}' (crm users list shows them)");
        }

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"user      {u.Id} ({u.Name}), {u.Kind.ToString().ToLowerInvariant()}, {(u.Deactivated ? $"deactivated {u.DeactivatedAt:u}" : "active")}");
        text.AppendLine(CultureInfo.InvariantCulture, $"e-mail    {u.Email ?? "-"}");
        text.AppendLine(CultureInfo.InvariantCulture, $"unit      {u.BusinessUnit}");
        text.AppendLine(CultureInfo.InvariantCulture, $"manager   {u.Manager ?? "-"}");
        text.AppendLine(CultureInfo.InvariantCulture, $"locale    {u.Locale ?? "-"}, time zone {u.TimeZone ?? "-"}, calendar {u.Calendar ?? "-"}");
        text.AppendLine(CultureInfo.InvariantCulture, $"roles     {Join(u.Roles)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"teams     {Join(u.Teams)}");
        text.AppendLine("rights (direct and team roles added up):");
        text.Append(PrivilegeTable(CoreEntities, (e, p) => access.DepthOf(e, p)));
        var hidden = access.Fields(EntityNames.Customer).Hidden;
        text.AppendLine(CultureInfo.InvariantCulture, $"hidden customer fields: {(hidden.Count == 0 ? "none" : string.Join(", ", hidden.Order(StringComparer.Ordinal)))}");
        return text.ToString();
    }

    private static string FormatTeams(SecuritySnapshot snapshot)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"ID",-20} {"NAME",-24} {"UNIT",-14} {"ROLES",-30} MEMBERS");
        foreach (var t in snapshot.Teams.Values.OrderBy(t => t.Id, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{t.Id,-20} {t.Name,-24} {t.BusinessUnit,-14} {Join(t.Roles),-30} {Join(snapshot.TeamMembers.GetValueOrDefault(t.Id) ?? [])}");
        }

        return text.ToString();
    }

    private static string FormatRoles(IEnumerable<SecurityRole> roles)
    {
        var text = new StringBuilder();
        foreach (var r in roles.OrderBy(r => r.Id, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{r.Id,-18} {r.Name,-20} {r.Description}");
        }

        return text.ToString();
    }

    private static string FormatRole(SecurityRole role, SecuritySnapshot snapshot)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"role {role.Id}: {role.Name}");
        if (role.Description is { } d)
        {
            text.AppendLine(d);
        }

        var entities = role.Privileges.Keys.Order(StringComparer.Ordinal).ToList();
        text.Append(PrivilegeTable(entities, (e, p) => role.Privileges[e].TryGetValue(AccessContext.Name(p), out var depth) ? depth : AccessDepth.None));
        var fields = snapshot.ProtectedFields.SelectMany(p => p.Value.Select(f => $"{p.Key}.{f}")).Order(StringComparer.Ordinal).ToList();
        foreach (var field in fields)
        {
            var rights = role.Fields.Where(f => f.Key == field || f.Key == field.Split('.')[0] + ".*" || f.Key == "*.*").Select(f => f.Value).ToList();
            var access = rights.Any(r => r.Write) ? "read write" : rights.Any(r => r.Read) ? "read" : "hidden";
            text.AppendLine(CultureInfo.InvariantCulture, $"  field {field,-28} {access}");
        }

        return text.ToString();
    }

    private static string PrivilegeTable(IEnumerable<string> entities, Func<string, Privilege, AccessDepth> depth)
    {
        var privileges = Enum.GetValues<Privilege>();
        var text = new StringBuilder();
        text.AppendLine($"  {"ENTITY",-14}" + string.Concat(privileges.Select(p => $" {AccessContext.Name(p),-13}")));
        foreach (var e in entities)
        {
            text.AppendLine($"  {e,-14}" + string.Concat(privileges.Select(p => $" {AccessContext.Name(depth(e, p)),-13}")));
        }

        return text.ToString();
    }

    private static string FormatUnits(SecuritySnapshot snapshot)
    {
        var text = new StringBuilder();
        void Walk(string id, int level)
        {
            var unit = snapshot.Units[id];
            var users = snapshot.Users.Values.Count(u => u.BusinessUnit == id);
            var teams = snapshot.Teams.Values.Count(t => t.BusinessUnit == id);
            text.AppendLine(CultureInfo.InvariantCulture, $"{new string(' ', level * 2)}{id} ({unit.Name}): {users} users, {teams} teams");
            foreach (var child in snapshot.Units.Values.Where(u => u.Parent == id).Select(u => u.Id).Order(StringComparer.Ordinal))
            {
                Walk(child, level + 1);
            }
        }

        if (snapshot.RootUnit is null)
        {
            return "no units yet (crm security seed)\n";
        }

        Walk(snapshot.RootUnit, 0);
        return text.ToString();
    }

    private static string Join(IEnumerable<string> items) => items.Any() ? string.Join(",", items) : "-";
}
