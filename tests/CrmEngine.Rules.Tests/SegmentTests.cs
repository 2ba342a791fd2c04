using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Rules;
using CrmEngine.Rules.Segments;

namespace CrmEngine.Rules.Tests;

public class SegmentTests
{
    private const string BigSpenders = "// @description spent over 1000 with at least 2 orders\nreturn customer.totalSpent > 1000 && customer.orderCount >= 2;";

    [Fact]
    public async Task A_full_rebuild_stores_exactly_the_customers_the_script_accepts()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "big-spenders", BigSpenders);
        world.Catalog.Reload();
        var rich = await world.AddCustomerAsync("Rich");
        var poor = await world.AddCustomerAsync("Poor");
        var once = await world.AddCustomerAsync("Once");
        await world.AddOrderAsync(rich.Id, 800, 10);
        await world.AddOrderAsync(rich.Id, 900, 20);
        await world.AddOrderAsync(poor.Id, 10, 10);
        await world.AddOrderAsync(poor.Id, 10, 10);
        await world.AddOrderAsync(once.Id, 5000, 3);
        await world.AddOrderAsync(once.Id, 5000, 3, OrderStatus.Cancelled);

        var report = await world.Segments.RebuildAsync("big-spenders");

        Assert.Equal([rich.Id], await world.MembersAsync("big-spenders"));
        Assert.Equal(3, report.Customers);
        Assert.Equal(1, report.Added);
        var state = await world.Segments.StateAsync("big-spenders");
        Assert.Equal(world.Catalog.Find(RuleKind.Segment, "big-spenders")!.Hash, state!.RebuiltWithHash);
        var member = Assert.Single(await world.Segments.MembersAsync("big-spenders"));
        Assert.Equal(state.ScriptHash, member.ScriptHash);
    }

    [Fact]
    public async Task The_customer_object_carries_card_fields_tags_custom_fields_and_derived_figures()
    {
        using var world = new TestWorld();
        var c = await world.AddCustomerAsync("Acme", x =>
        {
            x.Tags = ["vip"];
            x.Profile.Region = "north";
            x.Custom["segmentScore"] = CustomValue.Of(42m);
            x.OverdueAmount = 120;
        });
        await world.AddOrderAsync(c.Id, 100, 40);
        await world.AddOrderAsync(c.Id, 300, 5);
        await world.Store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "call", Type = ActivityType.Call, EndAt = world.Time.GetUtcNow().AddDays(-2) });
        var facts = await CustomerFacts.LoadAsync(world.Store, c.Id, world.Time.GetUtcNow());

        Assert.NotNull(facts);
        Assert.Equal(2, facts!["orderCount"]);
        Assert.Equal(400d, facts["totalSpent"]);
        Assert.Equal(200d, facts["averageSpent"]);
        Assert.Equal(5d, facts["daysSinceLastOrder"]);
        Assert.Equal(world.Time.GetUtcNow().AddDays(-40), facts["firstOrderDate"]);
        Assert.Equal(300d, facts["spentLast30Days"]);
        Assert.Equal(world.Time.GetUtcNow().AddDays(-2), facts["lastActivityDate"]);
        Assert.Equal(0, facts["openCases"]);
        Assert.Equal("north", facts["region"]);
        Assert.Equal(42d, ((Dictionary<string, object?>)facts["custom"]!)["segmentScore"]);
        Assert.Equal(120d, facts["overdueAmount"]);
    }

    [Fact]
    public async Task Incremental_updates_and_a_full_rebuild_agree_exactly()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "big-spenders", BigSpenders);
        world.WriteRule("segments", "recent-vip", "return customer.tags.includes('vip') && dates.withinDays(customer.lastOrderDate, 30);");
        world.Catalog.Reload();
        var random = new Random(7);
        var customers = new List<Customer>();
        for (var i = 0; i < 40; i++)
        {
            var c = await world.AddCustomerAsync("C" + i, x => x.Tags = i % 3 == 0 ? ["vip"] : []);
            customers.Add(c);
            for (var k = random.Next(0, 4); k > 0; k--)
            {
                await world.AddOrderAsync(c.Id, random.Next(50, 900), random.Next(0, 90));
            }
        }

        await world.DrainAsync(); // first start: full rebuild, cursor stored

        // A stream of changes, processed incrementally from the change feed.
        var orders = new List<Order>();
        for (var step = 0; step < 60; step++)
        {
            var c = customers[random.Next(customers.Count)];
            switch (random.Next(5))
            {
                case 0:
                    orders.Add(await world.AddOrderAsync(c.Id, random.Next(100, 2000), random.Next(0, 60)));
                    break;
                case 1 when orders.Count > 0:
                {
                    var o = orders[random.Next(orders.Count)];
                    var fresh = (await world.Store.Orders.GetAsync(o.Id))!;
                    fresh.Status = OrderStatus.Cancelled;
                    await world.Store.Orders.UpdateAsync(fresh);
                    break;
                }
                case 2 when orders.Count > 0:
                {
                    var o = orders[random.Next(orders.Count)];
                    orders.Remove(o);
                    await world.Store.Orders.DeleteAsync(o.Id);
                    break;
                }
                case 3:
                {
                    var fresh = (await world.Store.Customers.GetAsync(c.Id))!;
                    fresh.Tags = fresh.Tags.Contains("vip") ? [] : ["vip"];
                    await world.Store.Customers.UpdateAsync(fresh);
                    break;
                }
                case 4 when orders.Count > 0:
                {
                    // An order moves to another customer: both are re-evaluated.
                    var o = orders[random.Next(orders.Count)];
                    var fresh = (await world.Store.Orders.GetAsync(o.Id))!;
                    fresh.CustomerId = customers[random.Next(customers.Count)].Id;
                    await world.Store.Orders.UpdateAsync(fresh);
                    break;
                }
            }

            if (step % 7 == 0)
            {
                await world.DrainAsync();
            }
        }

        var doomed = customers[5];
        foreach (var o in await world.Store.Orders.FindAsync("customerId", doomed.Id))
        {
            await world.Store.Orders.DeleteAsync(o.Id);
        }

        await world.Store.Customers.DeleteAsync(doomed.Id);
        await world.DrainAsync();
        var incremental = new[] { await world.MembersAsync("big-spenders"), await world.MembersAsync("recent-vip") };
        Assert.NotEmpty(incremental[0]);

        var reports = await world.Segments.RebuildAllAsync();
        var rebuilt = new[] { await world.MembersAsync("big-spenders"), await world.MembersAsync("recent-vip") };

        Assert.Equal(incremental[0], rebuilt[0]);
        Assert.Equal(incremental[1], rebuilt[1]);
        Assert.All(reports, r => Assert.Equal((0, 0), (r.Added, r.Removed)));
        Assert.DoesNotContain(doomed.Id, rebuilt[0]);
    }

    [Fact]
    public async Task A_segment_that_keeps_failing_is_marked_failed_with_its_last_error()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "fragile", "if (customer.name.startsWith('Bad')) {\n  throw new Error('cannot judge ' + customer.name);\n}\nreturn true;");
        world.Catalog.Reload();
        await world.DrainAsync();
        for (var i = 0; i < 4; i++)
        {
            await world.AddCustomerAsync("Bad" + i);
        }

        await world.DrainAsync();
        var state = await world.Segments.StateAsync("fragile");
        Assert.Equal(SegmentStatus.Failed, state!.Status);
        Assert.Contains("cannot judge Bad", state.LastError, StringComparison.Ordinal);
        Assert.Contains("fragile.js:2:", state.LastError, StringComparison.Ordinal);
        var listed = Assert.Single(await world.Segments.ListAsync());
        Assert.Equal(SegmentStatus.Failed, listed.Status);
    }

    [Fact]
    public async Task A_segment_that_breaks_its_budget_is_marked_failed_with_the_budget_report_and_the_others_go_on()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "endless", "// @statements 1000\nwhile (true) {}\nreturn true;");
        world.WriteRule("segments", "everyone", "return true;");
        world.Catalog.Reload();
        await world.DrainAsync();
        var customers = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            customers.Add((await world.AddCustomerAsync("C" + i)).Id);
        }

        await world.DrainAsync();
        var state = await world.Segments.StateAsync("endless");
        Assert.Equal(SegmentStatus.Failed, state!.Status);
        Assert.Contains("endless.js:2:", state.LastError, StringComparison.Ordinal);
        Assert.Contains("statement budget of 1000 exceeded", state.LastError, StringComparison.Ordinal);
        Assert.Matches(@"\d+ of 1000 statements, .* call depth 1 of \d+", state.LastError);
        Assert.Empty(await world.MembersAsync("endless"));
        Assert.Equal(customers, await world.MembersAsync("everyone"));
        Assert.Equal(SegmentStatus.Active, (await world.Segments.StateAsync("everyone"))!.Status);
    }

    [Fact]
    public async Task A_script_that_does_not_return_a_boolean_is_an_error_not_a_silent_no()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "forgot-return", "customer.totalSpent > 10;");
        world.Catalog.Reload();
        var c = await world.AddCustomerAsync("A");
        var result = await world.Segments.EvaluateAsync("forgot-return", c.Id);
        Assert.Equal(RuleErrorKind.Result, result!.Error!.Kind);
        Assert.Contains("return statement missing", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_shows_the_inputs_read_the_result_and_the_version_that_decided()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "big-spenders", BigSpenders);
        world.Catalog.Reload();
        var c = await world.AddCustomerAsync("Rich");
        await world.AddOrderAsync(c.Id, 800, 10);
        await world.AddOrderAsync(c.Id, 900, 10);
        await world.Segments.RebuildAsync("big-spenders");
        var firstHash = world.Catalog.Find(RuleKind.Segment, "big-spenders")!.Hash;

        // The script changes; until the customer is re-evaluated the old version's decision stands.
        world.WriteRule("segments", "big-spenders", BigSpenders.Replace("1000", "5000", StringComparison.Ordinal));
        world.Catalog.Reload();
        var explanation = await world.Segments.ExplainAsync("big-spenders", c.Id);

        Assert.True(explanation.IsMember);
        Assert.Equal(firstHash, explanation.DecidedByHash);
        Assert.False(explanation.DecidedByCurrentVersion);
        Assert.Equal(true, explanation.Run.Value);
        Assert.Contains(explanation.Run.Reads, r => r.Path == "customer.totalSpent" && Equals(r.Value, 1700d));
        Assert.Contains(explanation.Run.Reads, r => r.Path == "customer.orderCount" && Equals(r.Value, 2d));

        await world.Segments.RebuildAsync("big-spenders");
        var now = await world.Segments.ExplainAsync("big-spenders", c.Id);
        Assert.False(now.IsMember);
        Assert.True(now.DecidedByCurrentVersion);
        Assert.Equal(false, now.Run.Value);
    }

    [Fact]
    public async Task The_background_service_updates_membership_from_a_change_without_a_rebuild()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "big-spenders", BigSpenders);
        world.Catalog.Reload();
        var c = await world.AddCustomerAsync("Soon rich");
        await world.Segments.StartAsync(CancellationToken.None);
        try
        {
            await WaitFor(async () => await world.Segments.StateAsync("big-spenders") is not null);
            Assert.Empty(await world.MembersAsync("big-spenders"));

            await world.AddOrderAsync(c.Id, 600, 1);
            await world.AddOrderAsync(c.Id, 600, 1);
            // Waits for the stored outcome (generous deadline; no timing is asserted): the change feed did it, not a rebuild.
            await WaitFor(async () => (await world.MembersAsync("big-spenders")).Contains(c.Id));
            Assert.Equal(1, (await world.Segments.StateAsync("big-spenders"))!.Rebuilds);
            var member = Assert.Single(await world.Segments.MembersAsync("big-spenders"));
            Assert.Equal(world.Catalog.Find(RuleKind.Segment, "big-spenders")!.Hash, member.ScriptHash);
        }
        finally
        {
            await world.Segments.StopAsync(CancellationToken.None);
        }
    }

    internal static async Task WaitFor(Func<Task<bool>> condition, int seconds = 90)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, "the condition did not become true in time");
            await Task.Delay(50);
        }
    }
}

public class FieldAnalysisTests
{
    [Theory]
    [InlineData("return customer.totalSpent > 1 && customer . orderCount >= 2;", "orderCount,totalSpent")]
    [InlineData("// the customer's figures\nreturn customer.totalSpent > 1;", null)]
    [InlineData("const c = customer; return c.totalSpent > 1;", null)]
    [InlineData("return customer['totalSpent'] > 1;", null)]
    [InlineData("return Object.keys(customer).length > 1;", null)]
    [InlineData("const customerName = 'x'; return customer.tags.includes(customerName);", "tags")]
    public void Only_plainly_named_fields_narrow_what_is_copied(string code, string? expected)
    {
        var fields = CustomerFacts.ReferencedFields(code, "customer");
        Assert.Equal(expected, fields is null ? null : string.Join(",", fields.Order(StringComparer.Ordinal)));
    }
}

public class RestartTests
{
    [Fact]
    public async Task After_a_restart_an_unchanged_segment_is_not_rebuilt_and_the_change_feed_resumes_from_the_stored_position()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "vip", "return customer.tags.includes('vip');");
        world.Catalog.Reload();
        var a = await world.AddCustomerAsync("A", c => c.Tags = ["vip"]);
        await world.Segments.StartAsync(CancellationToken.None);
        await SegmentTests.WaitFor(async () => await world.Segments.IsMemberAsync("vip", a.Id));
        await world.Segments.StopAsync(CancellationToken.None);
        await world.DrainAsync(); // the stop may come before the first cursor was stored
        var rebuiltAt = (await world.Segments.StateAsync("vip"))!.LastRebuildAt;

        // While the service is down a customer changes; a new service instance catches up from the stored position.
        var fresh = (await world.Store.Customers.GetAsync(a.Id))!;
        fresh.Tags = [];
        await world.Store.Customers.UpdateAsync(fresh);
        world.Time.Advance(TimeSpan.FromHours(1));
        using var catalog = new RuleCatalog(world.Engine, world.RulesFolder);
        using var second = new SegmentService(world.Engine, catalog, world.Provider, Microsoft.Extensions.Options.Options.Create(world.Options), world.Time);
        catalog.Reload(); // a fresh start loads every script again
        await second.StartAsync(CancellationToken.None);
        try
        {
            await SegmentTests.WaitFor(async () => !await second.IsMemberAsync("vip", a.Id));
            Assert.Equal(rebuiltAt, (await second.StateAsync("vip"))!.LastRebuildAt);
        }
        finally
        {
            await second.StopAsync(CancellationToken.None);
        }
    }
}
