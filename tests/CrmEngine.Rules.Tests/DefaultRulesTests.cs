using CrmEngine.Abstractions.Model;
using CrmEngine.Core.Pipeline;
using CrmEngine.Rules.Events;

namespace CrmEngine.Rules.Tests;

/// <summary>The scripts shipped in rules/ (copied next to the tests), against a real store.</summary>
public class DefaultRulesTests
{
    private static readonly string Shipped = Path.Combine(AppContext.BaseDirectory, "rules");

    private static TestWorld WorldWithShippedRules()
    {
        var world = new TestWorld();
        foreach (var file in Directory.EnumerateFiles(Shipped, "*.js", SearchOption.AllDirectories))
        {
            var target = Path.Combine(world.RulesFolder, Path.GetRelativePath(Shipped, file));
            File.Copy(file, target, overwrite: true);
        }

        Assert.Empty(world.Catalog.Reload());
        return world;
    }

    [Fact]
    public void Every_shipped_script_compiles()
    {
        using var world = WorldWithShippedRules();
        Assert.Equal(["dormant-customers", "high-value-recent-buyers", "overdue-payments"], world.Catalog.Segments.Select(s => s.Name));
        Assert.Equal(["lifecycle-stage", "owner-by-region"], world.Catalog.Events.Select(s => s.Name));
    }

    [Fact]
    public async Task The_shipped_segments_pick_the_right_customers()
    {
        using var world = WorldWithShippedRules();
        var whale = await world.AddCustomerAsync("Whale");
        for (var i = 0; i < 10; i++)
        {
            await world.AddOrderAsync(whale.Id, 600, 10 + i);
        }

        var almost = await world.AddCustomerAsync("Nine orders");
        for (var i = 0; i < 9; i++)
        {
            await world.AddOrderAsync(almost.Id, 2000, 5);
        }

        var sleeper = await world.AddCustomerAsync("Sleeper");
        await world.AddOrderAsync(sleeper.Id, 100, 200);
        var badSleeper = await world.AddCustomerAsync("Bad sleeper", c => { c.Blacklisted = true; c.BlacklistReason = "unpaid"; });
        await world.AddOrderAsync(badSleeper.Id, 100, 400);
        var debtor = await world.AddCustomerAsync("Debtor", c => c.OverdueAmount = 250);
        var never = await world.AddCustomerAsync("Never bought");

        await world.Segments.RebuildAllAsync();

        Assert.Equal([whale.Id], await world.MembersAsync("high-value-recent-buyers"));
        Assert.Equal([sleeper.Id], await world.MembersAsync("dormant-customers"));
        Assert.Equal([debtor.Id], await world.MembersAsync("overdue-payments"));
        Assert.DoesNotContain(never.Id, await world.MembersAsync("dormant-customers"));
    }

    [Fact]
    public async Task Owner_by_region_assigns_the_rep_of_the_region_and_keeps_an_existing_owner()
    {
        using var world = WorldWithShippedRules();
        using var rules = new EventRules(world.Engine, world.Catalog, world.Registry, world.Provider, world.Time);
        rules.Start();

        Assert.Equal("anna", (await world.AddCustomerAsync("N", c => c.Profile.Region = "North")).Owner);
        Assert.Equal("zoe", (await world.AddCustomerAsync("Z", c => { c.Profile.Region = "north"; c.Owner = "zoe"; })).Owner);
        Assert.Null((await world.AddCustomerAsync("X", c => c.Profile.Region = "atlantis")).Owner);
    }

    [Fact]
    public async Task Lifecycle_stage_follows_the_orders()
    {
        using var world = WorldWithShippedRules();
        using var rules = new EventRules(world.Engine, world.Catalog, world.Registry, world.Provider, world.Time);
        rules.Start();
        using var dispatcher = new AsyncDeliveryDispatcher(world.Pipeline);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            var c = await world.AddCustomerAsync("Fresh", x => x.Stage = LifecycleStage.Prospect);
            await world.AddOrderAsync(c.Id, 100, 1);
            await SegmentTests.WaitFor(async () => (await world.Store.Customers.GetAsync(c.Id))!.Stage == LifecycleStage.NewCustomer);
            Assert.Equal(CustomerStatus.Existing, (await world.Store.Customers.GetAsync(c.Id))!.Status);

            await world.AddOrderAsync(c.Id, 100, 1);
            await SegmentTests.WaitFor(async () => (await world.Store.Customers.GetAsync(c.Id))!.Stage == LifecycleStage.RepeatCustomer);
            for (var i = 0; i < 3; i++)
            {
                await world.AddOrderAsync(c.Id, 100, 1);
            }

            await SegmentTests.WaitFor(async () => (await world.Store.Customers.GetAsync(c.Id))!.Stage == LifecycleStage.LoyalCustomer);

            var old = await world.AddCustomerAsync("Old");
            await world.AddOrderAsync(old.Id, 100, 400);
            await SegmentTests.WaitFor(async () => (await world.Store.Customers.GetAsync(old.Id))!.Stage == LifecycleStage.Lost);
        }
        finally
        {
            await dispatcher.StopAsync(CancellationToken.None);
        }
    }
}
