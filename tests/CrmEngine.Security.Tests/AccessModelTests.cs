using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.Security.Tests;

/// <summary>Depths over a unit tree, team roles, shares, field masks, deactivated users and key scopes.</summary>
public sealed class AccessModelTests
{
    [Fact]
    public async Task A_team_role_reaches_the_teams_unit_and_adds_to_the_users_own_roles()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        // A team in marketing whose role reads its unit: members read marketing's records, wherever they sit themselves.
        await engine.Security.CreateTeamAsync(new SecurityTeam { Id = "t-mkt", Name = "Marketing helpers", BusinessUnit = "marketing" }, "admin");
        await engine.Security.AddTeamRoleAsync("t-mkt", "service-agent", "admin");
        var before = await engine.Security.ContextForAsync("u-salesperson");
        Assert.False(before.Check(Privilege.Read, new RecordRef("customer", "c1", "other")).Allowed);

        await engine.Security.AddTeamMemberAsync("t-mkt", "u-salesperson", "admin");
        var after = await engine.Security.ContextForAsync("u-salesperson");
        var decision = after.Check(Privilege.Read, new RecordRef("customer", "c1", "other"));
        Assert.True(decision.Allowed, decision.ToString());
        Assert.Contains("team 't-mkt'", decision.Reason, StringComparison.Ordinal);
        // Unit depth of the team role is marketing's unit, not the user's (sales): a colleague in sales stays hidden.
        Assert.False(after.Check(Privilege.Read, new RecordRef("customer", "c2", "same")).Allowed);
        // The direct role still gives own records with write; the team role gives no write on marketing's records.
        Assert.True(after.Check(Privilege.Write, new RecordRef("customer", "c3", "u-salesperson")).Allowed);
        Assert.False(after.Check(Privilege.Write, new RecordRef("customer", "c1", "other")).Allowed);
        Assert.Equal(AccessDepth.Unit, after.DepthOf("customer", Privilege.Read));
    }

    [Fact]
    public async Task Unit_and_below_follows_the_tree_and_a_user_moved_to_another_unit_takes_their_records_along()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var manager = await engine.Security.ContextForAsync("u-sales-manager");
        var north = new RecordRef("customer", "n1", "child");
        Assert.True(manager.Check(Privilege.Read, north).Allowed);
        Assert.False(manager.Check(Privilege.Delete, north).Allowed); // delete is unit depth only

        // The record's unit is its owner's: moving the owner to marketing moves the record out of the manager's reach.
        await engine.Security.UpdateUserAsync("child", new UserChanges(Unit: "marketing"), "admin");
        manager = await engine.Security.ContextForAsync("u-sales-manager");
        var denied = manager.Check(Privilege.Read, north);
        Assert.False(denied.Allowed);
        Assert.Contains("unit 'marketing'", denied.Reason, StringComparison.Ordinal);
        Assert.Equal("customer:read", denied.Missing);
    }

    [Fact]
    public async Task A_share_reaches_a_record_for_the_shared_privileges_only_and_unsharing_takes_it_back()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var record = new RecordRef("customer", "c-other", "other");
        var salesperson = await engine.Security.ContextForAsync("u-salesperson");
        Assert.False(salesperson.Check(Privilege.Read, record).Allowed);

        await engine.Security.ShareAsync("customer", "c-other", "user:u-salesperson", [Privilege.Read], "admin");
        salesperson = await engine.Security.ContextForAsync("u-salesperson");
        Assert.True(salesperson.Check(Privilege.Read, record).Allowed);
        Assert.False(salesperson.Check(Privilege.Write, record).Allowed);
        Assert.Contains("c-other", salesperson.Filter("customer").SharedIds);

        // Shared with a team: every member gets it; a share never grants what the roles lack (marketing: no order rights).
        await engine.Security.ShareAsync("order", "o-other", "team:t-sales", [Privilege.Read], "admin");
        var agent = await engine.Security.ContextForAsync("u-service-agent");
        Assert.True(agent.Check(Privilege.Read, new RecordRef("order", "o-other", "other")).Allowed);
        var marketing = await engine.Security.ContextForAsync("u-marketing");
        Assert.False(marketing.Check(Privilege.Read, new RecordRef("order", "o-other", "other")).Allowed);

        Assert.True(await engine.Security.UnshareAsync("customer", "c-other", "user:u-salesperson", "admin"));
        Assert.False(await engine.Security.UnshareAsync("customer", "c-other", "user:u-salesperson", "admin"));
        salesperson = await engine.Security.ContextForAsync("u-salesperson");
        Assert.False(salesperson.Check(Privilege.Read, record).Allowed);
        Assert.Empty(salesperson.Filter("customer").SharedIds);
    }

    [Fact]
    public async Task Field_masks_hide_protected_fields_refuse_them_as_filters_and_refuse_changing_them()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var salesperson = (await engine.Security.ContextForAsync("u-salesperson")).Fields("customer");
        Assert.Equal(["blacklistReason", "overdueAmount"], salesperson.Hidden.Order(StringComparer.Ordinal));
        Assert.Equal(6, salesperson.ReadOnly.Count);

        var card = new Customer { Id = "c1", Name = "Müller", CreditLevel = "B", OverdueAmount = 1200m, Blacklisted = true, BlacklistReason = "unpaid", PaymentTerms = "30 days" };
        var json = salesperson.Apply(card);
        Assert.Equal("B", json["creditLevel"]!.GetValue<string>());
        Assert.True(json["blacklisted"]!.GetValue<bool>());
        Assert.False(json.ContainsKey("overdueAmount"));
        Assert.False(json.ContainsKey("blacklistReason"));
        Assert.Equal("Müller", json["name"]!.GetValue<string>());

        var filter = salesperson.CheckQueryField("OverdueAmount");
        Assert.False(filter.Allowed);
        Assert.Equal("customer.overdueAmount:read", filter.Missing);
        Assert.True(salesperson.CheckQueryField("name").Allowed);

        var changed = new Customer { Id = "c1", Name = "Müller GmbH", CreditLevel = "A", OverdueAmount = 1200m, Blacklisted = true, BlacklistReason = "unpaid", PaymentTerms = "30 days" };
        var write = salesperson.CheckWrite(card, changed);
        Assert.False(write.Allowed);
        Assert.Equal("customer.creditLevel:write", write.Missing);
        changed.CreditLevel = "B";
        Assert.True(salesperson.CheckWrite(card, changed).Allowed);
        // A create that leaves the protected fields at their defaults is fine; one that sets them is not.
        Assert.True(salesperson.CheckWrite(null, new Customer { Name = "New" }).Allowed);
        Assert.False(salesperson.CheckWrite(null, new Customer { Name = "New", Blacklisted = true }).Allowed);

        var admin = (await engine.Security.ContextForAsync("u-administrator")).Fields("customer");
        Assert.Empty(admin.Hidden);
        Assert.Empty(admin.ReadOnly);
        var marketing = (await engine.Security.ContextForAsync("u-marketing")).Fields("customer");
        Assert.Equal(6, marketing.Hidden.Count);
        var auditor = (await engine.Security.ContextForAsync("u-auditor")).Fields("customer");
        Assert.Empty(auditor.Hidden);
        Assert.Equal(6, auditor.ReadOnly.Count);
    }

    [Fact]
    public async Task A_deactivated_user_is_refused_everything_and_keeps_their_name_until_reactivated()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var own = new RecordRef("customer", "c1", "u-salesperson");
        await engine.Security.DeactivateUserAsync("u-salesperson", "admin", DateTimeOffset.UtcNow);

        var access = await engine.Security.ContextForAsync("u-salesperson");
        var denied = access.Check(Privilege.Read, own);
        Assert.False(denied.Allowed);
        Assert.Equal("user 'u-salesperson' is deactivated", denied.Reason);
        Assert.True(access.Filter("customer").IsEmpty);
        Assert.Equal(6, access.Fields("customer").Hidden.Count);
        Assert.Equal("U", access.Snapshot.Users["u-salesperson"].Name);

        await engine.Security.ActivateUserAsync("u-salesperson", "admin");
        Assert.True((await engine.Security.ContextForAsync("u-salesperson")).Check(Privilege.Read, own).Allowed);
        Assert.False((await engine.Security.ContextForAsync("nobody")).Check(Privilege.Read, own).Allowed);
    }

    [Fact]
    public async Task An_api_keys_scope_narrows_the_users_rights_and_never_widens_them()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var record = new RecordRef("customer", "c1", "other");
        var readKey = await engine.Security.ContextForAsync("u-administrator", ApiScope.Read);
        Assert.True(readKey.Check(Privilege.Read, record).Allowed);
        Assert.True(readKey.Check(Privilege.Export, record).Allowed);
        var denied = readKey.Check(Privilege.Write, record);
        Assert.False(denied.Allowed);
        Assert.Contains("scope 'read'", denied.Reason, StringComparison.Ordinal);
        Assert.Equal(6, readKey.Fields("customer").ReadOnly.Count);
        Assert.False(readKey.CanAdministerSecurity);
        Assert.False((await engine.Security.ContextForAsync("u-administrator", ApiScope.Write)).CanAdministerSecurity);
        Assert.True((await engine.Security.ContextForAsync("u-administrator", ApiScope.Admin)).CanAdministerSecurity);

        // An admin key of a salesperson is still a salesperson.
        var adminKey = await engine.Security.ContextForAsync("u-salesperson", ApiScope.Admin);
        Assert.False(adminKey.Check(Privilege.Read, record).Allowed);
        Assert.False(adminKey.CanAdministerSecurity);
    }

    [Fact]
    public async Task Every_writer_of_the_engine_maps_to_a_named_user()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var snapshot = await engine.Security.Directory.SnapshotAsync();
        var expected = new Dictionary<string, string>
        {
            ["u-salesperson"] = "u-salesperson",
            ["user:same"] = "same",
            ["import:same"] = "same",
            ["import:root"] = "sys-import",
            ["merge:other"] = "other",
            ["rule:welcome"] = "sys-rules",
            ["system:rules"] = "sys-rules",
            ["plugin:sales"] = "sys-plugins",
            ["job:abc"] = "sys-scheduler",
            ["mail"] = "sys-mail",
            ["unsubscribe"] = "sys-mail",
            ["apikey:erp"] = "sys-api",
            ["system:export"] = "sys-engine",
            ["admin"] = "admin",
        };
        foreach (var (actor, user) in expected)
        {
            Assert.Equal(user, SecurityAdministration.UserForActor(actor, snapshot));
            Assert.True(snapshot.Users.ContainsKey(user), $"{user} is not a seeded user");
        }
    }

    [Fact]
    public async Task Changes_to_the_model_are_audited_with_the_actor_and_bad_references_are_refused()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        await engine.Security.AddUserRoleAsync("same", "auditor", "admin");
        var history = await engine.Store().Audit.ForEntityAsync(SecurityDirectory.EntityName("users"), "same");
        Assert.Equal(2, history.Count);
        Assert.Equal("admin", history[^1].Actor);
        Assert.Contains(history[^1].Changes, c => c.Field.Contains("roles", StringComparison.OrdinalIgnoreCase) && c.After!.Contains("auditor", StringComparison.Ordinal));

        // Refusals are typed (the API maps the type, not the text) and name the input they are about.
        var missing = await Assert.ThrowsAsync<SecurityNotFoundException>(() => engine.Security.AddUserRoleAsync("same", "boss", "admin"));
        Assert.Equal("there is no role 'boss' (crm roles list shows them)", missing.Message);
        await Assert.ThrowsAsync<SecurityConflictException>(() => engine.Security.CreateUserAsync(new SecurityUser { Id = "same", Name = "S", BusinessUnit = "org" }, "admin"));
        var ex = await Assert.ThrowsAsync<SecurityAdminException>(() => engine.Security.CreateUserAsync(new SecurityUser { Id = "x y", Name = "X", BusinessUnit = "org" }, "admin"));
        Assert.Contains("'x y' is not a valid id", ex.Message, StringComparison.Ordinal);
        Assert.Equal("id", ex.Field);
        ex = await Assert.ThrowsAsync<SecurityAdminException>(() => engine.Security.CreateUserAsync(new SecurityUser { Id = "xy", Name = "X", BusinessUnit = "nowhere" }, "admin"));
        Assert.Contains("no unit 'nowhere'", ex.Message, StringComparison.Ordinal);
        Assert.Equal("unit", ex.Field);
        ex = await Assert.ThrowsAsync<SecurityAdminException>(() => engine.Security.CreateUnitAsync(new BusinessUnit { Id = "second-root", Name = "R" }, "admin"));
        Assert.Contains("--parent is required (the root unit is 'org')", ex.Message, StringComparison.Ordinal);
        Assert.False((await engine.Security.Directory.SnapshotAsync()).Users.ContainsKey("xy"));
    }
}
