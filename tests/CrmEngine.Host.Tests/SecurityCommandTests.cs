using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>crm security|users|teams|roles|units|shares|owners through the real process, engine stopped and running.</summary>
public sealed class SecurityCommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Config_check_and_the_start_name_each_bad_webhook_allowed_host_with_its_key_and_value()
    {
        using var root = new TestRoot();
        string[] bad = ["--Webhooks:AllowedHosts:0=erp.internal.example", "--Webhooks:AllowedHosts:1=10.20.0.0/33", "--Webhooks:AllowedHosts:2=bad host!"];
        var (code, text) = await Crm(root, ["config", "check", .. bad]);
        Assert.Equal(2, code);
        Assert.Contains("configuration error: Webhooks:AllowedHosts:1: is neither a host name nor an address range in CIDR notation", text, StringComparison.Ordinal);
        Assert.Contains("(value '10.20.0.0/33')", text, StringComparison.Ordinal);
        Assert.Contains("configuration error: Webhooks:AllowedHosts:2:", text, StringComparison.Ordinal);
        Assert.Contains("(value 'bad host!')", text, StringComparison.Ordinal);
        Assert.DoesNotContain("AllowedHosts:0", text, StringComparison.Ordinal);

        // The engine does not start with them either, naming the same key.
        (code, text) = await Crm(root, bad);
        Assert.Equal(2, code);
        Assert.Contains("Webhooks:AllowedHosts:1", text, StringComparison.Ordinal);

        (code, text) = await Crm(root, "config", "check", "--Webhooks:AllowedHosts:0=erp.internal.example", "--Webhooks:AllowedHosts:1=fd00:1::/64");
        Assert.True(code == 0, text);
        Assert.Contains("configuration OK", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Seed_users_roles_and_an_ownership_transfer_work_on_the_stopped_engine()
    {
        using var root = new TestRoot();
        var (code, text) = await Crm(root, "security", "seed");
        Assert.Equal(0, code);
        Assert.Contains("security.json: 21 created, 0 updated, 0 unchanged", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "security", "seed");
        Assert.Contains("security.json: 0 created, 0 updated, 21 unchanged", text, StringComparison.Ordinal);

        Assert.Equal(0, (await Crm(root, "units", "create", "north", "--name", "Sales north", "--parent", "sales")).Code);
        (code, text) = await Crm(root, "users", "create", "anna", "--name", "Anna Berg", "--unit", "north", "--role", "salesperson", "--email", "anna@example.com");
        Assert.True(code == 0, text);
        Assert.Equal(0, (await Crm(root, "users", "create", "ben", "--name", "Ben Ott", "--unit", "north", "--role", "salesperson", "--manager", "anna")).Code);
        (code, text) = await Crm(root, "users", "add-role", "anna", "boss");
        Assert.Equal(1, code);
        Assert.Contains("there is no role 'boss' (crm roles list shows them)", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "users", "create", "eve", "--name", "Eve", "--unit", "north", "--as", "anna");
        Assert.Equal(1, code);
        Assert.Contains("--as 'anna' may not do this: an active administrator is needed", text, StringComparison.Ordinal);

        (code, text) = await Crm(root, "users", "show", "anna");
        Assert.Equal(0, code);
        Assert.Contains("unit      north", text, StringComparison.Ordinal);
        Assert.Matches(@"customer\s+own\s+own\s+own\s+none\s+own\s+own\s+none", text);
        Assert.Contains("hidden customer fields: blacklistReason, overdueAmount", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "roles", "list");
        foreach (var role in new[] { "administrator", "sales-manager", "salesperson", "service-manager", "service-agent", "marketing", "auditor", "integration" })
        {
            Assert.Contains(role, text, StringComparison.Ordinal);
        }

        (code, text) = await Crm(root, "roles", "show", "salesperson");
        Assert.Matches(@"field customer.overdueAmount\s+hidden", text);
        Assert.Matches(@"field customer.creditLevel\s+read", text);

        // Anna's book: 2 customers, each with an open and a done activity, an open and a paid order.
        var ids = new List<string>();
        await root.WithStoreAsync(async store =>
        {
            for (var i = 0; i < 2; i++)
            {
                var c = await store.Customers.CreateAsync(new Customer { Name = $"Anna's {i}", Owner = "anna" });
                ids.Add(c.Id);
                await store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "open", Owner = "anna", Status = ActivityStatus.Planned });
                await store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "done", Owner = "anna", Status = ActivityStatus.Done });
                await store.Orders.CreateAsync(new Order { CustomerId = c.Id, Owner = "anna", Status = OrderStatus.Confirmed });
                await store.Orders.CreateAsync(new Order { CustomerId = c.Id, Owner = "anna", Status = OrderStatus.Paid });
            }
        });

        (code, text) = await Crm(root, "users", "deactivate", "anna");
        Assert.Contains("user 'anna' deactivated", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "owners", "transfer", "--from", "anna", "--to", "ben", "--only-open");
        Assert.True(code == 0, text);
        Assert.Contains("moved 2 customers, 2 open activities and 2 open orders from 'anna' to 'ben'", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "owners", "transfer", "--from", "anna", "--to", "ben", "--only-open");
        Assert.Contains("moved 0 customers, 0 open activities and 0 open orders", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "users", "list");
        Assert.Matches(@"anna\s+Anna Berg\s+person\s+north\s+salesperson\s+-\s+deactivated", text);

        await root.WithStoreAsync(async store =>
        {
            foreach (var id in ids)
            {
                Assert.Equal("ben", (await store.Customers.GetAsync(id))!.Owner);
                Assert.Equal("admin", (await store.Audit.ForEntityAsync(EntityNames.Customer, id))[^1].Actor);
                var activities = await store.Activities.FindAsync(IndexedField.CustomerId, id);
                Assert.Equal("ben", activities.Single(a => a.Subject == "open").Owner);
                Assert.Equal("anna", activities.Single(a => a.Subject == "done").Owner);
            }
        });
    }

    [Fact]
    public async Task The_running_engine_serves_the_same_verbs_over_its_control_channel()
    {
        using var root = new TestRoot();
        var ids = new List<string>();
        await root.WithStoreAsync(async store =>
        {
            for (var i = 0; i < 3; i++)
            {
                ids.Add((await store.Customers.CreateAsync(new Customer { Name = $"Carl's {i}", Owner = "carl" })).Id);
            }
        });

        using (var crm = CrmProcess.Start(root.Path, output, "run"))
        {
            await crm.WaitForReadyAsync();
            var (code, text) = await Crm(root, "security", "seed");
            Assert.True(code == 0, text);
            Assert.Contains("21 created", text, StringComparison.Ordinal);
            Assert.Equal(0, (await Crm(root, "users", "create", "carl", "--name", "Carl", "--unit", "sales", "--role", "salesperson")).Code);
            Assert.Equal(0, (await Crm(root, "users", "create", "dana", "--name", "Dana", "--unit", "sales")).Code);
            Assert.Equal(0, (await Crm(root, "teams", "create", "north-team", "--name", "North", "--unit", "sales")).Code);
            Assert.Equal(0, (await Crm(root, "teams", "add-role", "north-team", "salesperson")).Code);
            Assert.Equal(0, (await Crm(root, "teams", "add-member", "north-team", "dana")).Code);
            (code, text) = await Crm(root, "teams", "list");
            Assert.Matches(@"north-team\s+North\s+sales\s+salesperson\s+dana", text);

            // Dana reads customers through her team's role; the decision names where it came from.
            (code, text) = await Crm(root, "security", "explain", "dana", "read", "customer", "dana");
            Assert.Contains("allowed: role 'salesperson' (team 'north-team') grants customer:read at depth own", text, StringComparison.Ordinal);
            (code, text) = await Crm(root, "security", "explain", "dana", "read", "customer", "carl", "--id", ids[0]);
            Assert.Contains("denied (customer:read)", text, StringComparison.Ordinal);
            Assert.Equal(0, (await Crm(root, "shares", "add", "customer", ids[0], "user:dana", "--privileges", "read")).Code);
            (code, text) = await Crm(root, "security", "explain", "dana", "read", "customer", "carl", "--id", ids[0]);
            Assert.Contains($"allowed: customer '{ids[0]}' is shared with user:dana for read", text, StringComparison.Ordinal);

            Assert.Equal(0, (await Crm(root, "shares", "remove", "customer", ids[0], "user:dana")).Code);
            (code, text) = await Crm(root, "shares", "list", "customer", ids[0]);
            Assert.Contains($"customer '{ids[0]}' is not shared", text, StringComparison.Ordinal);
            Assert.Equal(0, (await Crm(root, "units", "create", "east", "--name", "Sales east", "--parent", "sales")).Code);
            Assert.Equal(0, (await Crm(root, "users", "update", "dana", "--unit", "east", "--email", "dana@example.com")).Code);
            (code, text) = await Crm(root, "units", "list");
            Assert.Contains("  sales (Sales): 1 users, 1 teams\n    east (Sales east): 1 users, 0 teams", text.ReplaceLineEndings("\n"), StringComparison.Ordinal);

            (code, text) = await Crm(root, "owners", "transfer", "--from", "carl", "--to", "team:north-team");
            Assert.True(code == 0, text);
            Assert.Contains("moved 3 customers, 0 activities and 0 orders from 'carl' to 'team:north-team'", text, StringComparison.Ordinal);
            (code, text) = await Crm(root, "owners", "transfer", "--from", "carl", "--to", "nobody");
            Assert.Equal(1, code);
            Assert.Contains("--to 'nobody' is not an active user or an existing team", text, StringComparison.Ordinal);

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(Bound));
        }

        await root.WithStoreAsync(async store =>
        {
            Assert.Equal(ids.Order(StringComparer.Ordinal), (await store.Customers.FindAsync(IndexedField.Owner, "team:north-team")).Select(c => c.Id));
            Assert.Empty(await store.Customers.FindAsync(IndexedField.Owner, "carl"));
        });
    }

    private Task<(int Code, string Text)> Crm(TestRoot root, params string[] args) => CrmProcess.RunAsync(root.Path, output, args);
}
