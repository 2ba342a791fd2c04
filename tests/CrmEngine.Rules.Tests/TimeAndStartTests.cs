using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Rules;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Segments;
using CrmEngine.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace CrmEngine.Rules.Tests;

public class FirstStartTests
{
    [Fact]
    public async Task A_first_start_rebuilds_each_segment_once_and_then_follows_the_change_feed()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "vip", "return customer.tags.includes('vip');");
        world.WriteRule("segments", "named-a", "return customer.name.startsWith('A');");
        var before = await world.AddCustomerAsync("Anna", c => c.Tags = ["vip"]);
        world.Catalog.Reload(); // as at start: every script is announced as new (which queues a rebuild of each)
        await world.Segments.StartAsync(CancellationToken.None);
        try
        {
            await SegmentTests.WaitFor(async () => await world.Segments.StateAsync("vip") is not null && await world.Segments.StateAsync("named-a") is not null);
            var after = await world.AddCustomerAsync("Alex", c => c.Tags = ["vip"]);
            // Once a change made after the start is applied, the queued rebuilds have been looked at (they come first).
            await SegmentTests.WaitFor(async () => await world.Segments.IsMemberAsync("vip", after.Id) && await world.Segments.IsMemberAsync("named-a", after.Id));

            Assert.True(await world.Segments.IsMemberAsync("vip", before.Id));
            Assert.Equal(1, (await world.Segments.StateAsync("vip"))!.Rebuilds);
            Assert.Equal(1, (await world.Segments.StateAsync("named-a"))!.Rebuilds);
        }
        finally
        {
            await world.Segments.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_segment_rebuilt_offline_before_the_first_start_is_not_rebuilt_again_and_no_later_change_is_missed()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "vip", "return customer.tags.includes('vip');");
        world.Catalog.Reload();
        var a = await world.AddCustomerAsync("A", c => c.Tags = ["vip"]);
        await world.Segments.RebuildAsync("vip"); // crm segments rebuild on the stopped database
        var b = await world.AddCustomerAsync("B", c => c.Tags = ["vip"]); // written after that rebuild, before the start
        await world.DrainAsync(); // the first start of the change feed

        Assert.Equal(1, (await world.Segments.StateAsync("vip"))!.Rebuilds);
        Assert.Equal([a.Id, b.Id], await world.MembersAsync("vip"));
    }
}

public class TimeDependenceTests
{
    [Theory]
    [InlineData("return customer.daysSinceLastOrder > 90;", true)]
    [InlineData("return customer.spentLast90Days > 100;", true)]
    [InlineData("return dates.withinDays(customer.lastOrderDate, 30);", true)]
    [InlineData("return customer.lastOrderDate < Date.now() - 86400000;", true)]
    [InlineData("const c = customer; return c.totalSpent > 1;", true)] // reads cannot be told: assumed
    [InlineData("return customer.totalSpent > 1000 && customer.orderCount >= 2;", false)]
    [InlineData("return customer.tags.includes('vip') && dates.year(customer.createdAt) === 2025;", false)]
    [InlineData("// @timeDependent no\nreturn customer.daysSinceLastOrder > 90;", false)]
    [InlineData("// @timeDependent yes\nreturn customer.totalSpent > 1;", true)]
    public void The_engine_tells_which_segments_depend_on_time(string code, bool expected)
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "s", code);
        world.Catalog.Reload();
        Assert.Equal(expected, world.Segments.IsTimeDependent(world.Catalog.Find(RuleKind.Segment, "s")!));
    }

    [Fact]
    public async Task Time_alone_moves_a_customer_into_a_time_dependent_segment_through_the_scheduler()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-rules-time", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(folder, "rules", "segments"));
        File.WriteAllText(Path.Combine(folder, "rules", "segments", "dormant.js"), "return customer.orderCount > 0 && customer.daysSinceLastOrder > 30;");
        File.WriteAllText(Path.Combine(folder, "rules", "segments", "vip.js"), "return customer.tags.includes('vip');");
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 9, 0, 0, TimeSpan.Zero));
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = folder, DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = Path.Combine(folder, "data"),
            ["Rules:ChangePollInterval"] = "00:00:00.050",
            ["Rules:TimeRefresh"] = "01:00:00",
            ["Scheduler:PollInterval"] = "00:00:00.100",
        });
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddCrmCore(builder.Configuration);
        builder.Services.AddCrmScheduling(builder.Configuration);
        builder.Services.AddCrmRules(builder.Configuration);
        using var host = builder.Build();
        var store = host.Services.GetRequiredService<IStoreProvider>().ForActor("user:test");
        var c = await store.Customers.CreateAsync(new Customer { Name = "Quiet", Tags = ["vip"] });
        await store.Orders.CreateAsync(new Order
        {
            CustomerId = c.Id,
            Status = OrderStatus.Paid,
            OrderedAt = time.GetUtcNow().AddDays(-30),
            Lines = [new OrderLine { Description = "item", Quantity = 1, UnitPrice = 10 }],
        });
        await host.StartAsync();
        try
        {
            var segments = host.Services.GetRequiredService<SegmentService>();
            await SegmentTests.WaitFor(async () => await segments.IsMemberAsync("vip", c.Id) && await segments.StateAsync("dormant") is not null);
            Assert.False(await segments.IsMemberAsync("dormant", c.Id)); // exactly 30 days: not yet
            var job = await host.Services.GetRequiredService<IScheduler>().FindByKeyAsync(SegmentService.TimeRefreshJobKind);
            Assert.Equal(TimeSpan.FromHours(1), job?.Schedule.Interval);

            // Nothing about the customer changes; a day passes. The scheduler's refresh moves it in.
            time.Advance(TimeSpan.FromDays(1));
            await SegmentTests.WaitFor(async () =>
            {
                time.Advance(TimeSpan.FromSeconds(1)); // wakes the scheduler's sleep on the fake clock
                // The refresh's state is saved after its members: wait for both.
                return await segments.IsMemberAsync("dormant", c.Id) && (await segments.StateAsync("dormant"))!.Rebuilds >= 2;
            });

            Assert.Equal(1, (await segments.StateAsync("vip"))!.Rebuilds); // not time-dependent: not rebuilt
            Assert.Equal(SegmentStatus.Active, (await segments.StateAsync("dormant"))!.Status);
        }
        finally
        {
            await host.StopAsync();
            try
            {
                Directory.Delete(folder, true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public async Task Without_a_scheduler_the_service_refreshes_time_dependent_segments_on_its_own_clock()
    {
        using var world = new TestWorld(new RulesOptions { Workers = 2, ChangePollInterval = TimeSpan.FromMilliseconds(50), TimeRefresh = TimeSpan.FromHours(1) });
        world.WriteRule("segments", "dormant", "return customer.orderCount > 0 && customer.daysSinceLastOrder > 30;");
        world.Catalog.Reload();
        var c = await world.AddCustomerAsync("Quiet");
        await world.AddOrderAsync(c.Id, 10, 30);
        await world.Segments.StartAsync(CancellationToken.None);
        try
        {
            await SegmentTests.WaitFor(async () => await world.Segments.StateAsync("dormant") is not null);
            Assert.False(await world.Segments.IsMemberAsync("dormant", c.Id));
            world.Time.Advance(TimeSpan.FromDays(1));
            await SegmentTests.WaitFor(async () => await world.Segments.IsMemberAsync("dormant", c.Id));
        }
        finally
        {
            await world.Segments.StopAsync(CancellationToken.None);
        }
    }
}
