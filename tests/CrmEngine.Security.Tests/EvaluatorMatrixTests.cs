namespace CrmEngine.Security.Tests;

/// <summary>Every shipped role × core entity × operation × record position → allow/deny, as data.</summary>
public sealed class EvaluatorMatrixTests
{
    private static readonly Privilege[] Operations =
        [Privilege.Create, Privilege.Read, Privilege.Write, Privilege.Delete, Privilege.Assign, Privilege.Share, Privilege.Export];

    /// <summary>role → entity → depth code per operation (create read write delete assign share export).</summary>
    private static readonly Dictionary<string, Dictionary<string, string>> Expected = new()
    {
        ["administrator"] = Same("aaaaaaa"),
        ["sales-manager"] = new() { ["customer"] = "bbbubbb", ["activity"] = "bbbubbb", ["order"] = "bbbubbb", ["product"] = "-a----a", ["consent"] = "aa----a" },
        ["salesperson"] = new() { ["customer"] = "ooo-oo-", ["activity"] = "oooooo-", ["order"] = "ooo-o--", ["product"] = "-a-----", ["consent"] = "aa-----" },
        ["service-manager"] = new() { ["customer"] = "-bb---u", ["activity"] = "bbbubbb", ["order"] = "-b-----", ["product"] = "-a-----", ["consent"] = "aa-----" },
        ["service-agent"] = new() { ["customer"] = "-uo----", ["activity"] = "tto-t--", ["order"] = "-u-----", ["product"] = "-a-----", ["consent"] = "aa-----" },
        ["marketing"] = new() { ["customer"] = "ua----a", ["activity"] = "ooo----", ["order"] = "-------", ["product"] = "-a-----", ["consent"] = "aaa---a" },
        ["auditor"] = Same("-a----a"),
        ["integration"] = new() { ["customer"] = "aaa-a-a", ["activity"] = "aaa-a-a", ["order"] = "aaa-a-a", ["product"] = "aaa---a", ["consent"] = "aaa---a" },
    };

    private static Dictionary<string, string> Same(string codes) =>
        new[] { "customer", "activity", "order", "product", "consent" }.ToDictionary(e => e, _ => codes);

    [Fact]
    public async Task Every_shipped_role_entity_operation_and_record_position_is_allowed_or_denied_as_the_table_says()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var mismatches = new List<string>();
        var checkedCount = 0;
        foreach (var role in Fixture.ShippedRoles)
        {
            var user = "u-" + role;
            var access = await engine.Security.ContextForAsync(user);
            foreach (var (entity, codes) in Expected[role])
            {
                for (var op = 0; op < Operations.Length; op++)
                {
                    var reach = Fixture.Reach[codes[op]];
                    foreach (var position in Fixture.Positions)
                    {
                        var record = new RecordRef(entity, "r-" + position, Fixture.OwnerAt(position, user));
                        var decision = access.Check(Operations[op], record);
                        checkedCount++;
                        if (decision.Allowed != reach.Contains(position))
                        {
                            mismatches.Add($"{role} {entity} {Operations[op]} {position}: expected {(reach.Contains(position) ? "allow" : "deny")}, got {decision}");
                        }

                        if (!decision.Allowed && decision.Missing != $"{entity}:{AccessContext.Name(Operations[op])}")
                        {
                            mismatches.Add($"{role} {entity} {Operations[op]} {position}: the denial names '{decision.Missing}'");
                        }
                    }

                    // The query filter keeps exactly the records the single check allows.
                    var filter = access.Filter(entity, Operations[op]);
                    foreach (var position in Fixture.Positions)
                    {
                        if (filter.Matches("r-" + position, Fixture.OwnerAt(position, user)) != reach.Contains(position))
                        {
                            mismatches.Add($"{role} {entity} {Operations[op]} {position}: the query filter disagrees");
                        }
                    }
                }
            }
        }

        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
        Assert.Equal(8 * 5 * 7 * 7, checkedCount);
    }

    [Fact]
    public async Task Only_the_administrator_manages_security_and_a_plugin_entity_follows_the_star_entry()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        foreach (var role in Fixture.ShippedRoles)
        {
            var access = await engine.Security.ContextForAsync("u-" + role);
            Assert.Equal(role == "administrator", access.CanAdministerSecurity);
        }

        var auditor = await engine.Security.ContextForAsync("u-auditor");
        Assert.True(auditor.Check(Privilege.Read, new RecordRef("sales_opportunity", "x", "other")).Allowed);
        Assert.False(auditor.Check(Privilege.Write, new RecordRef("sales_opportunity", "x", "other")).Allowed);
        var salesperson = await engine.Security.ContextForAsync("u-salesperson");
        var denied = salesperson.Check(Privilege.Read, new RecordRef("sales_opportunity", "x", "u-salesperson"));
        Assert.False(denied.Allowed);
        Assert.Equal("sales_opportunity:read", denied.Missing);
    }
}
