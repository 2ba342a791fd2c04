using System.Net;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Issue #9, review findings 6 and 10, through the real <c>crm</c>: segment membership never tells a user what is hidden
/// from them (over HTTP), and <c>crm rules test --as</c> / <c>crm segments explain --as</c> compute the facts from what the
/// user may read. Anna (salesperson, north) may not read overdueAmount; Ben (south) has a Confirmed order on her customer.
/// </summary>
public sealed class SecuritySegmentTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Segments_and_dry_runs_show_a_user_only_what_they_may_read()
    {
        using var root = new TestRoot();
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        Assert.Equal(0, (await Crm(root, "units", "create", "north", "--name", "North", "--parent", "sales")).Code);
        Assert.Equal(0, (await Crm(root, "units", "create", "south", "--name", "South", "--parent", "sales")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "anna", "--name", "Anna", "--unit", "north", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "ben", "--name", "Ben", "--unit", "south", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "max", "--name", "Max", "--unit", "north", "--role", "marketing")).Code);
        string owing = "", mixed = "", own = "";
        await root.WithStoreAsync(async store =>
        {
            var now = DateTimeOffset.UtcNow;
            owing = (await store.Customers.CreateAsync(new Customer { Name = "Owing", Owner = "anna", OverdueAmount = 4711.5m })).Id;
            mixed = (await store.Customers.CreateAsync(new Customer { Name = "Mixed", Owner = "anna" })).Id;
            own = (await store.Customers.CreateAsync(new Customer { Name = "Own", Owner = "anna" })).Id;
            // Ben's order on Anna's customer: she may not read it (GET .../orders as anna gives []).
            await store.Orders.CreateAsync(new Order
            {
                CustomerId = mixed, Number = "B-77", Owner = "ben", Status = OrderStatus.Confirmed, OrderedAt = now.AddDays(-3),
                Lines = [new OrderLine { Description = "secret", Quantity = 1, UnitPrice = 999.25m }],
            });
            await store.Orders.CreateAsync(new Order
            {
                CustomerId = own, Number = "A-1", Owner = "anna", Status = OrderStatus.Paid, OrderedAt = now.AddDays(-300),
                Lines = [new OrderLine { Description = "hers", Quantity = 1, UnitPrice = 10 }],
            });
        });
        Directory.CreateDirectory(root.File_("rules/segments"));
        // The shipped overdue-payments and dormant-customers conditions, a plain order segment and one every customer is in.
        await File.WriteAllTextAsync(root.File_("rules/segments/overdue-payments.js"), "return customer.overdueAmount >= 0.01;\n");
        await File.WriteAllTextAsync(root.File_("rules/segments/dormant-customers.js"),
            "return customer.orderCount > 0 && customer.daysSinceLastOrder > 180 && !customer.blacklisted;\n");
        await File.WriteAllTextAsync(root.File_("rules/segments/buyers.js"), "return customer.orderCount > 0;\n");
        await File.WriteAllTextAsync(root.File_("rules/segments/everyone.js"), "return customer.name.length > 0;\n");
        await File.WriteAllTextAsync(root.File_("probe.js"),
            "log('count', customer.orderCount, 'total', customer.totalSpent, 'numbers', customer.orders.map(o => o.number).join('+'));\nreturn customer.orderCount > 0;\n");
        await File.WriteAllTextAsync(root.File_("order-probe.js"), "// @entity order\n// @stage pre\nlog('number', record.number, record.total);\n");
        var (code, text) = await Crm(root, "segments", "rebuild");
        Assert.True(code == 0, text);

        // ---- Dry runs and explain as Anna (engine stopped: the verbs run in-process): Ben's order is not in her facts.
        (code, text) = await Crm(root, "rules", "test", "probe.js", "--customer", mixed, "--as", "anna");
        Assert.True(code == 0, text);
        Assert.Contains("log: count 0 total 0 numbers", text, StringComparison.Ordinal);
        Assert.Contains("facts as user 'anna' sees them", text, StringComparison.Ordinal);
        AssertNoTraceOfBensOrder(text);
        (code, text) = await Crm(root, "rules", "test", "probe.js", "--customer", mixed);
        Assert.Contains("log: count 1 total 999.25 numbers B-77", text, StringComparison.Ordinal); // the machine operator's view
        (code, text) = await Crm(root, "rules", "test", "order-probe.js", "--customer", mixed, "--as", "anna");
        Assert.Contains($"customer '{mixed}' has no order to test the rule with", text, StringComparison.Ordinal);
        AssertNoTraceOfBensOrder(text);
        (code, text) = await Crm(root, "segments", "explain", "buyers", mixed, "--as", "anna");
        Assert.True(code == 0, text);
        Assert.Contains("membership of segment buyers not shown", text, StringComparison.Ordinal);
        Assert.DoesNotContain(" IN ", text, StringComparison.Ordinal);
        Assert.Contains("read customer.orderCount = 0", text, StringComparison.Ordinal);
        AssertNoTraceOfBensOrder(text);
        (code, text) = await Crm(root, "segments", "explain", "buyers", mixed);
        Assert.Contains($"customer {mixed} is IN segment buyers", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "segments", "explain", "overdue-payments", owing, "--as", "anna");
        Assert.Contains("not shown", text, StringComparison.Ordinal);
        Assert.DoesNotContain("4711.5", text, StringComparison.Ordinal);
        Assert.DoesNotContain(" IN ", text, StringComparison.Ordinal);

        // ---- Over HTTP.
        var keys = new Dictionary<string, string>();
        foreach (var user in new[] { "anna", "max", "admin" })
        {
            (code, text) = await Crm(root, "apikeys", "create", "--name", user + "-read", "--scope", "read", "--user", user);
            Assert.True(code == 0, text);
            keys[user] = ApiHostTests.ParseKey(text);
        }

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = TimeSpan.FromMinutes(2) };
        async Task<JsonNode> GetAsync(string user, string path)
        {
            using var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, path, keys[user]);
            var body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"{user} GET {path}: {(int)r.StatusCode} {body}");
            return JsonNode.Parse(body)!;
        }

        async Task<Dictionary<string, long>> SegmentsAsync(string user) =>
            (await GetAsync(user, "api/segments"))["items"]!.AsArray().ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!["members"]!.GetValue<long>());

        async Task<List<string>> NamesAsync(string user, string path) =>
            (await GetAsync(user, path))["items"]!.AsArray().Select(s => (s!["segment"] ?? s["customerId"])!.GetValue<string>()).Order(StringComparer.Ordinal).ToList();

        // The administrator sees every segment with every member.
        var all = await SegmentsAsync("admin");
        Assert.Equal(1, all["overdue-payments"]);
        Assert.Equal(2, all["buyers"]);
        Assert.Equal(1, all["dormant-customers"]);
        Assert.Equal(["buyers", "everyone"], await NamesAsync("admin", $"api/customers/{mixed}/segments"));
        Assert.Equal(["everyone", "overdue-payments"], await NamesAsync("admin", $"api/customers/{owing}/segments"));

        // Anna: overdue-payments reads overdueAmount, hidden from her: not listed, not on her customer, its members answer as an
        // unknown segment. buyers is there, but her customer whose only order is Ben's is not shown in it.
        var annas = await SegmentsAsync("anna");
        Assert.False(annas.ContainsKey("overdue-payments"));
        Assert.Equal(1, annas["buyers"]);
        Assert.Equal(1, annas["dormant-customers"]); // blacklisted she may read; her own old order
        Assert.Equal(3, annas["everyone"]);
        Assert.Equal(["everyone"], await NamesAsync("anna", $"api/customers/{owing}/segments"));
        Assert.Equal(["everyone"], await NamesAsync("anna", $"api/customers/{mixed}/segments"));
        Assert.Equal(["buyers", "dormant-customers", "everyone"], await NamesAsync("anna", $"api/customers/{own}/segments"));
        Assert.Equal([own], await NamesAsync("anna", "api/segments/buyers/members"));
        string unknown, hidden;
        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/segments/no-such-segment/members", keys["anna"]))
        {
            unknown = (await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.NotFound)).ToJsonString().Replace("no-such-segment", "X", StringComparison.Ordinal);
        }

        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/segments/overdue-payments/members", keys["anna"]))
        {
            hidden = (await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.NotFound)).ToJsonString().Replace("overdue-payments", "X", StringComparison.Ordinal);
        }

        Assert.Equal(unknown, hidden);

        // Max (marketing): blacklisted and overdueAmount are hidden from him, and he reads no orders.
        var maxs = await SegmentsAsync("max");
        Assert.False(maxs.ContainsKey("overdue-payments"));
        Assert.False(maxs.ContainsKey("dormant-customers"));
        Assert.Equal(0, maxs["buyers"]);
        Assert.Equal(3, maxs["everyone"]);
        Assert.Equal(["everyone"], await NamesAsync("max", $"api/customers/{own}/segments"));

        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromMinutes(2)));
    }

    private static void AssertNoTraceOfBensOrder(string text)
    {
        Assert.DoesNotContain("B-77", text, StringComparison.Ordinal);
        Assert.DoesNotContain("999.25", text, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
    }

    private Task<(int Code, string Text)> Crm(TestRoot root, params string[] args) => CrmProcess.RunAsync(root.Path, output, args);
}
