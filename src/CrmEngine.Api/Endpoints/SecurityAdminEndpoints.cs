using System.Text.Json.Serialization;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Security;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Endpoints;

/// <summary>A user as the admin API shows it (and accepts it on create).</summary>
public sealed record SecurityUserBody(string? Id, string? Name, string? Email, UserKind? Kind, string? Unit, string? Manager, string? Locale,
    string? TimeZone, string? Calendar, IReadOnlyList<string>? Roles, IReadOnlyList<string>? Teams, bool Deactivated = false,
    DateTimeOffset? DeactivatedAt = null);

/// <summary>A team with its members (members are kept on the users; shown here for convenience).</summary>
public sealed record SecurityTeamBody(string? Id, string? Name, string? Unit, string? Description, IReadOnlyList<string>? Roles, IReadOnlyList<string>? Members);

public sealed record SecurityUnitBody(string? Id, string? Name, string? Parent);

/// <summary>A role: per entity the depth of each privilege, and the rights on protected fields.</summary>
public sealed record SecurityRoleBody(string Id, string Name, string? Description, IReadOnlyDictionary<string, Dictionary<string, string>> Privileges,
    IReadOnlyDictionary<string, string> Fields);

public sealed record ShareGrantBody(string Principal, IReadOnlyList<string> Privileges);

public sealed record ShareBody(string Entity, string RecordId, IReadOnlyList<ShareGrantBody> Grants);

public sealed record SharePrivilegesBody(IReadOnlyList<string>? Privileges);

public sealed record TransferBody(string? From, string? To, bool OnlyOpen = false);

/// <summary>
/// <c>/api/security/...</c>: users, teams, units, roles, shares and ownership transfer over HTTP. Every endpoint needs the
/// admin scope AND a caller whose user may administer security (<c>security: write at all</c>, as the CLI's <c>--as</c>);
/// the transfer needs the admin scope and <c>assign</c> over the records (checked by the transfer itself). The same
/// <see cref="SecurityAdministration"/> methods as the CLI run with the caller's user as actor, so the audit log names them.
/// </summary>
internal sealed class SecurityAdminEndpoints : IApiEndpointModule
{
    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        var g = api.MapGroup("/security").WithTags("Security administration").RequireAuthorization(ApiPolicies.Admin);

        g.MapGet("/users", Whole(s => Results.Ok(s.Users.Values.OrderBy(u => u.Id, StringComparer.Ordinal).Select(Show).ToList())))
            .WithName("ListSecurityUsers").WithSummary("Every user (deactivated ones too).").Produces<List<SecurityUserBody>>().ProducesProblem(403);
        g.MapGet("/users/{id}", (HttpContext c, string id) => ReadAsync(c, s =>
                s.Users.TryGetValue(id, out var u) ? Results.Ok(Show(u)) : NotFound("user", id)))
            .WithName("GetSecurityUser").WithSummary("One user.").Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404);
        g.MapPost("/users", (HttpContext c, SecurityUserBody body) => RunAsync(c, async (admin, actor) =>
            {
                if ((Required(body.Id, "id") ?? Required(body.Name, "name") ?? Required(body.Unit, "unit")) is { } missing)
                {
                    return missing;
                }

                var created = await admin.CreateUserAsync(new SecurityUser
                {
                    Id = body.Id!.Trim(), Name = body.Name!, Email = body.Email, Kind = body.Kind ?? UserKind.Person, BusinessUnit = body.Unit!,
                    Manager = body.Manager, Locale = body.Locale, TimeZone = body.TimeZone, Calendar = body.Calendar,
                    Roles = [.. body.Roles ?? []], Teams = [.. body.Teams ?? []],
                }, actor, c.RequestAborted);
                return Results.Created($"/api/security/users/{Uri.EscapeDataString(created.Id)}", Show(created));
            }))
            .WithName("CreateSecurityUser").WithSummary("Creates a user (id, name and unit required).").Accepts<SecurityUserBody>("application/json")
            .Produces<SecurityUserBody>(201).ProducesProblem(400).ProducesProblem(403).ProducesProblem(409).ProducesProblem(422);
        g.MapPatch("/users/{id}", (HttpContext c, string id, SecurityUserBody body) => RunAsync(c, async (admin, actor) =>
            {
                if (body.Id is { } other && other != id)
                {
                    return ApiProblems.Field(400, "id", $"'{other}' differs from the user in the address ('{id}'); a user's id cannot change");
                }

                if (body.Roles is not null || body.Teams is not null)
                {
                    return ApiProblems.Field(400, body.Roles is not null ? "roles" : "teams",
                        "roles and teams are changed one at a time: PUT/DELETE /api/security/users/{id}/roles/{role} and /api/security/teams/{team}/members/{user}");
                }

                return Results.Ok(Show(await admin.UpdateUserAsync(id, new UserChanges(body.Name, body.Email, body.Unit, body.Manager, body.Locale,
                    body.TimeZone, body.Calendar, body.Kind), actor, c.RequestAborted)));
            }))
            .WithName("UpdateSecurityUser").WithSummary("Changes the given fields of a user (absent fields stay).").Accepts<SecurityUserBody>("application/json")
            .Produces<SecurityUserBody>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);
        g.MapPost("/users/{id}/deactivate", (HttpContext c, string id) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.DeactivateUserAsync(id, actor, (c.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow(), c.RequestAborted)))))
            .WithName("DeactivateSecurityUser").WithSummary("Deactivates a user: every check refuses them; records and history keep them.")
            .Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404);
        g.MapPost("/users/{id}/activate", (HttpContext c, string id) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.ActivateUserAsync(id, actor, c.RequestAborted)))))
            .WithName("ActivateSecurityUser").WithSummary("Activates a deactivated user again.").Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404);
        g.MapPut("/users/{id}/roles/{role}", (HttpContext c, string id, string role) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.AddUserRoleAsync(id, role, actor, c.RequestAborted))), "role"))
            .WithName("AssignUserRole").WithSummary("Gives a user a role.").Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);
        g.MapDelete("/users/{id}/roles/{role}", (HttpContext c, string id, string role) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.RemoveUserRoleAsync(id, role, actor, c.RequestAborted))), "role"))
            .WithName("UnassignUserRole").WithSummary("Takes a role from a user.").Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);

        g.MapGet("/teams", Whole(s => Results.Ok(s.Teams.Values.OrderBy(t => t.Id, StringComparer.Ordinal).Select(t => Show(t, s)).ToList())))
            .WithName("ListSecurityTeams").WithSummary("Every team with its members.").Produces<List<SecurityTeamBody>>().ProducesProblem(403);
        g.MapGet("/teams/{id}", (HttpContext c, string id) => ReadAsync(c, s =>
                s.Teams.TryGetValue(id, out var t) ? Results.Ok(Show(t, s)) : NotFound("team", id)))
            .WithName("GetSecurityTeam").WithSummary("One team with its members.").Produces<SecurityTeamBody>().ProducesProblem(403).ProducesProblem(404);
        g.MapPost("/teams", (HttpContext c, SecurityTeamBody body) => RunAsync(c, async (admin, actor) =>
            {
                if ((Required(body.Id, "id") ?? Required(body.Name, "name") ?? Required(body.Unit, "unit")) is { } missing)
                {
                    return missing;
                }

                var team = await admin.CreateTeamAsync(new SecurityTeam { Id = body.Id!.Trim(), Name = body.Name!, BusinessUnit = body.Unit!, Description = body.Description }, actor,
                    c.RequestAborted);
                foreach (var role in body.Roles ?? [])
                {
                    team = await admin.AddTeamRoleAsync(team.Id, role, actor, c.RequestAborted);
                }

                return Results.Created($"/api/security/teams/{Uri.EscapeDataString(team.Id)}", Show(team, await admin.Directory.SnapshotAsync(c.RequestAborted)));
            }))
            .WithName("CreateSecurityTeam").WithSummary("Creates a team (id, name and unit required; roles optional).").Accepts<SecurityTeamBody>("application/json")
            .Produces<SecurityTeamBody>(201).ProducesProblem(400).ProducesProblem(403).ProducesProblem(409).ProducesProblem(422);
        g.MapPut("/teams/{id}/members/{user}", (HttpContext c, string id, string user) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.AddTeamMemberAsync(id, user, actor, c.RequestAborted))), "team"))
            .WithName("AddTeamMember").WithSummary("Adds a user to a team (answers the user).").Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);
        g.MapDelete("/teams/{id}/members/{user}", (HttpContext c, string id, string user) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.RemoveTeamMemberAsync(id, user, actor, c.RequestAborted))), "team"))
            .WithName("RemoveTeamMember").WithSummary("Removes a user from a team (answers the user).").Produces<SecurityUserBody>().ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);
        g.MapPut("/teams/{id}/roles/{role}", (HttpContext c, string id, string role) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.AddTeamRoleAsync(id, role, actor, c.RequestAborted), await admin.Directory.SnapshotAsync(c.RequestAborted))), "role"))
            .WithName("AssignTeamRole").WithSummary("Gives a team a role (its members get it).").Produces<SecurityTeamBody>().ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);
        g.MapDelete("/teams/{id}/roles/{role}", (HttpContext c, string id, string role) => RunAsync(c, async (admin, actor) =>
                Results.Ok(Show(await admin.RemoveTeamRoleAsync(id, role, actor, c.RequestAborted), await admin.Directory.SnapshotAsync(c.RequestAborted))), "role"))
            .WithName("UnassignTeamRole").WithSummary("Takes a role from a team.").Produces<SecurityTeamBody>().ProducesProblem(403).ProducesProblem(404).ProducesProblem(422);

        g.MapGet("/units", Whole(s =>
                Results.Ok(s.Units.Values.OrderBy(u => u.Id, StringComparer.Ordinal).Select(u => new SecurityUnitBody(u.Id, u.Name, u.Parent)).ToList())))
            .WithName("ListSecurityUnits").WithSummary("The business units (the one without parent is the root).").Produces<List<SecurityUnitBody>>().ProducesProblem(403);
        g.MapPost("/units", (HttpContext c, SecurityUnitBody body) => RunAsync(c, async (admin, actor) =>
            {
                if ((Required(body.Id, "id") ?? Required(body.Parent, "parent")) is { } missing)
                {
                    return missing;
                }

                var unit = await admin.CreateUnitAsync(new BusinessUnit { Id = body.Id!.Trim(), Name = body.Name ?? body.Id!, Parent = body.Parent }, actor, c.RequestAborted);
                return Results.Created($"/api/security/units/{Uri.EscapeDataString(unit.Id)}", new SecurityUnitBody(unit.Id, unit.Name, unit.Parent));
            }, "parent"))
            .WithName("CreateSecurityUnit").WithSummary("Creates a business unit below parent.").Accepts<SecurityUnitBody>("application/json")
            .Produces<SecurityUnitBody>(201).ProducesProblem(400).ProducesProblem(403).ProducesProblem(409).ProducesProblem(422);

        g.MapGet("/roles", Whole(s => Results.Ok(s.Roles.Values.OrderBy(r => r.Id, StringComparer.Ordinal).Select(Show).ToList())))
            .WithName("ListSecurityRoles").WithSummary("Every role (roles are edited in the seed file).").Produces<List<SecurityRoleBody>>().ProducesProblem(403);
        g.MapGet("/roles/{id}", (HttpContext c, string id) => ReadAsync(c, s =>
                s.Roles.TryGetValue(id, out var r) ? Results.Ok(Show(r)) : NotFound("role", id)))
            .WithName("GetSecurityRole").WithSummary("One role.").Produces<SecurityRoleBody>().ProducesProblem(403).ProducesProblem(404);

        g.MapGet("/shares/{entity}/{recordId}", (HttpContext c, string entity, string recordId) => ReadAsync(c, s =>
                Results.Ok(Show(entity, recordId, s))))
            .WithName("GetShares").WithSummary("Who a record is shared with, for what.").Produces<ShareBody>().ProducesProblem(403);
        g.MapPut("/shares/{entity}/{recordId}/{principal}", (HttpContext c, string entity, string recordId, string principal, SharePrivilegesBody body) =>
                RunAsync(c, async (admin, actor) =>
                {
                    var privileges = new List<Privilege>();
                    foreach (var p in body.Privileges ?? ["read"])
                    {
                        if (!Enum.TryParse<Privilege>(p, ignoreCase: true, out var v) || int.TryParse(p, out _))
                        {
                            return ApiProblems.Field(400, "privileges", $"'{p}' is not a privilege (read, write, delete, assign, share, export)");
                        }

                        privileges.Add(v);
                    }

                    await admin.ShareAsync(entity, recordId, principal, privileges, actor, c.RequestAborted);
                    return Results.Ok(Show(entity, recordId, await admin.Directory.SnapshotAsync(c.RequestAborted)));
                }, "principal"))
            .WithName("ShareRecord").WithSummary("Shares a record with user:<id> or team:<id> for the given privileges (default read), replacing that principal's earlier grant.")
            .Accepts<SharePrivilegesBody>("application/json").Produces<ShareBody>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(422);
        g.MapDelete("/shares/{entity}/{recordId}/{principal}", (HttpContext c, string entity, string recordId, string principal) => RunAsync(c, async (admin, actor) =>
                await admin.UnshareAsync(entity, recordId, principal, actor, c.RequestAborted)
                    ? Results.Ok(Show(entity, recordId, await admin.Directory.SnapshotAsync(c.RequestAborted)))
                    : ApiProblems.Create(404, ApiProblems.Title(404), $"{entity} '{recordId}' is not shared with {principal}")))
            .WithName("UnshareRecord").WithSummary("Removes a principal's share of a record.").Produces<ShareBody>().ProducesProblem(403).ProducesProblem(404);

        g.MapPost("/owners/transfer", (HttpContext c, TransferBody body) => TransferAsync(c, body))
            .WithName("TransferOwnership")
            .WithSummary("Gives every customer of 'from' (with their activities and orders; onlyOpen: open ones) to 'to', one audited write per record, resumable.")
            .Accepts<TransferBody>("application/json").Produces<TransferResult>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(422);
    }

    /// <summary>The caller (its user, narrowed by the key's scope) must administer security; then the change runs as that user.</summary>
    private static async Task<IResult> RunAsync(HttpContext context, Func<SecurityAdministration, string, Task<IResult>> work, string field = "id")
    {
        var admin = context.RequestServices.GetRequiredService<SecurityAdministration>();
        var (user, refusal) = await CallerAsync(context, admin, transfer: false);
        if (refusal is not null)
        {
            return refusal;
        }

        try
        {
            return await work(admin, user);
        }
        catch (SecurityAdminException ex)
        {
            return Problem(context, ex, field);
        }
    }

    /// <summary>A list over the whole model (a Delegate, so minimal APIs write the result rather than take it for a RequestDelegate).</summary>
    private static Delegate Whole(Func<SecuritySnapshot, IResult> read) => (HttpContext c) => ReadAsync(c, read);

    /// <summary>A read of the model, for the same callers as the changes.</summary>
    private static Task<IResult> ReadAsync(HttpContext context, Func<SecuritySnapshot, IResult> read) =>
        RunAsync(context, async (admin, _) => read(await admin.Directory.SnapshotAsync(context.RequestAborted)));

    private static async Task<IResult> TransferAsync(HttpContext context, TransferBody body)
    {
        var admin = context.RequestServices.GetRequiredService<SecurityAdministration>();
        var (user, refusal) = await CallerAsync(context, admin, transfer: true);
        if (refusal is not null)
        {
            return refusal;
        }

        if ((Required(body.From, "from") ?? Required(body.To, "to")) is { } missing)
        {
            return missing;
        }

        try
        {
            var result = await context.RequestServices.GetRequiredService<OwnershipTransfer>()
                .TransferAsync(body.From!, body.To!, body.OnlyOpen, user, null, context.RequestAborted);
            return Results.Ok(result);
        }
        catch (SecurityAdminException ex)
        {
            // The transfer refuses (before anything moves, or at a record) when the caller lacks assign: a 403 naming the
            // privilege like every other denial; the rest is input.
            return Problem(context, ex, "from", body.From);
        }
    }

    private static async Task<(string User, IResult? Refusal)> CallerAsync(HttpContext context, SecurityAdministration admin, bool transfer)
    {
        var user = context.User.FindFirst(ApiKeyAuthenticationHandler.UserClaim)?.Value ?? SecurityAdministration.SystemUsers.Api;
        var access = await admin.ContextForAsync(user, ApiCaller.ScopeOf(context.User), context.RequestAborted);
        var allowed = transfer
            ? access.Snapshot.Users.TryGetValue(user, out var u) && !u.Deactivated
            : access.CanAdministerSecurity;
        if (allowed)
        {
            return (user, null);
        }

        var missing = SecurityEntities.Administration + ":write";
        return (user, ApiProblems.Create(403, ApiProblems.Title(403),
            $"user '{user}' may not administer security: it needs {missing} at depth all (the administrator role) and an API key with the admin scope" +
            (context.User.FindFirst(ApiKeyAuthenticationHandler.UserClaim) is null ? "; this key has no user and acts as sys-api (crm apikeys create --user)" : ""),
            extensions: new Dictionary<string, object?> { ["missingPrivilege"] = missing, ["user"] = user }));
    }

    /// <summary>
    /// An administration refusal by its type: 404 for a record the path names that does not exist, 409 for a taken id, 403
    /// naming the missing privilege for a denial, else 422 naming the field it is about (<paramref name="field"/> when the
    /// refusal names none).
    /// </summary>
    private static IResult Problem(HttpContext context, SecurityAdminException ex, string field, string? recordId = null)
    {
        switch (ex)
        {
            case SecurityNotFoundException:
                return ApiProblems.Create(404, ApiProblems.Title(404), ex.Message);
            case SecurityConflictException:
                return ApiProblems.Create(409, ApiProblems.Title(409), ex.Message, [new ApiFieldError("id", ex.Message)]);
            case SecurityDeniedException { Decision.Missing: { } missing }:
                ApiAccess.LogDenied(context, missing.Split(':')[0], recordId, missing);
                return ApiProblems.Result(ApiAccess.Problem(missing, ex.Message));
            default:
                var named = ex.Field ?? field;
                return ApiProblems.Create(422, ApiProblems.Title(422), ex.Message, [new ApiFieldError(named, ex.Message)]);
        }
    }

    private static IResult? Required(string? value, string field) =>
        string.IsNullOrWhiteSpace(value) ? ApiProblems.Field(400, field, "is required") : null;

    private static IResult NotFound(string what, string id) => ApiProblems.Create(404, ApiProblems.Title(404), $"there is no {what} '{id}'");

    private static SecurityUserBody Show(SecurityUser u) => new(u.Id, u.Name, u.Email, u.Kind, u.BusinessUnit, u.Manager, u.Locale, u.TimeZone, u.Calendar,
        u.Roles, u.Teams, u.Deactivated, u.DeactivatedAt);

    private static SecurityTeamBody Show(SecurityTeam t, SecuritySnapshot s) =>
        new(t.Id, t.Name, t.BusinessUnit, t.Description, t.Roles, s.TeamMembers.TryGetValue(t.Id, out var m) ? m : []);

    private static SecurityRoleBody Show(SecurityRole r) => new(r.Id, r.Name, r.Description,
        r.Privileges.ToDictionary(e => e.Key, e => e.Value.ToDictionary(p => p.Key, p => AccessContext.Name(p.Value))),
        r.Fields.ToDictionary(f => f.Key, f => f.Value.Write ? "read write" : f.Value.Read ? "read" : "none"));

    private static ShareBody Show(string entity, string recordId, SecuritySnapshot s) =>
        new(entity, recordId, s.Shares.TryGetValue(RecordShare.IdOf(entity, recordId), out var share)
            ? share.Grants.Select(g => new ShareGrantBody(g.Principal, g.Privileges.Select(AccessContext.Name).ToList())).ToList()
            : []);
}
