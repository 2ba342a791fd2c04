using CrmEngine.Abstractions.Rules;
using CrmEngine.Core;
using CrmEngine.Rules.Segments;
using CrmEngine.Rules.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Rules.Tests;

public class ToolingTests
{
    [Fact]
    public async Task A_dry_run_reports_result_log_reads_and_budget_and_writes_nothing()
    {
        using var world = new TestWorld();
        var c = await world.AddCustomerAsync("Rich");
        await world.AddOrderAsync(c.Id, 1500, 3);
        await world.AddOrderAsync(c.Id, 100, 3);
        var file = Path.Combine(world.Folder, "draft.js");
        File.WriteAllText(file, "log('checking', customer.name);\nreturn customer.totalSpent > 1000 && customer.orderCount >= 2;");
        var before = await world.Store.Changes.LastSequenceAsync();

        var tester = new RuleTester(world.Engine, world.Catalog, world.Provider, world.Time);
        var report = await tester.TestAsync(file, [c.Id]);

        var run = Assert.Single(report.Runs);
        Assert.Equal(true, run.Result.Value);
        Assert.Equal(["checking Rich"], run.Result.Log);
        Assert.Contains(run.Result.Reads, r => r.Path == "customer.totalSpent" && Equals(r.Value, 1600d));
        Assert.True(run.Result.Usage.Statements > 0);
        Assert.Equal(before, await world.Store.Changes.LastSequenceAsync());
        var text = report.ToText();
        Assert.Contains("returned true", text, StringComparison.Ordinal);
        Assert.Contains("read customer.totalSpent = 1600", text, StringComparison.Ordinal);
        Assert.Contains("log: checking Rich", text, StringComparison.Ordinal);
        Assert.Contains("statements", text, StringComparison.Ordinal);
        Assert.Matches(@"used [\d.]+ ms of 500 ms, \d+ of 100000 statements, [\d.]+ KB of 16384 KB memory, call depth \d+ of 64", text);
    }

    [Fact]
    public async Task A_dry_run_of_an_event_rule_reports_what_it_would_do()
    {
        using var world = new TestWorld();
        var c = await world.AddCustomerAsync("Acme", x => x.Profile.Region = "north");
        var file = Path.Combine(world.Folder, "owner.js");
        File.WriteAllText(file, "// @entity customer\n// @stage pre\nrecord.owner = 'rep-' + record.region;");
        var tester = new RuleTester(world.Engine, world.Catalog, world.Provider, world.Time);

        var report = await tester.TestAsync(file, [c.Id]);

        Assert.Equal(["set owner = \"rep-north\""], Assert.Single(report.Runs).Effects);
        Assert.Null((await world.Store.Customers.GetAsync(c.Id))!.Owner);
    }

    [Fact]
    public async Task A_sample_dry_run_picks_distinct_customers_and_a_broken_script_is_refused_with_its_position()
    {
        using var world = new TestWorld();
        for (var i = 0; i < 20; i++)
        {
            await world.AddCustomerAsync("C" + i);
        }

        var tester = new RuleTester(world.Engine, world.Catalog, world.Provider, world.Time);
        var file = Path.Combine(world.Folder, "s.js");
        File.WriteAllText(file, "return customer.orderCount === 0;");
        var report = await tester.TestAsync(file, sample: 5, seed: 1);
        Assert.Equal(5, report.Runs.Select(r => r.CustomerId).Distinct().Count());

        File.WriteAllText(file, "return (customer.orderCount === ;");
        var broken = await tester.TestAsync(file, sample: 1);
        Assert.NotNull(broken.CompileError);
        Assert.StartsWith("REFUSED " + file + ":1:", broken.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Saving_a_script_reloads_it_and_a_broken_save_keeps_the_previous_version()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "vip", "return customer.tags.includes('vip');");
        world.Catalog.Reload();
        var first = world.Catalog.Find(RuleKind.Segment, "vip")!.Hash;
        var refused = new List<RuleError>();
        world.Catalog.Refused += (_, e) => refused.Add(e);
        world.Catalog.Watch(TimeSpan.FromMilliseconds(100));

        world.WriteRule("segments", "vip", "return customer.tags.includes('VIP');");
        await SegmentTests.WaitFor(() => Task.FromResult(world.Catalog.Find(RuleKind.Segment, "vip")!.Hash != first));
        var second = world.Catalog.Find(RuleKind.Segment, "vip")!;
        Assert.Contains("'VIP'", second.Script.Code, StringComparison.Ordinal);

        world.WriteRule("segments", "vip", "// broken\nreturn customer.tags.includes(;");
        await SegmentTests.WaitFor(() => Task.FromResult(refused.Count > 0));
        Assert.Equal(second.Hash, world.Catalog.Find(RuleKind.Segment, "vip")!.Hash);
        Assert.Equal(2, refused[0].Line);
        Assert.EndsWith("segments/vip.js", refused[0].Script, StringComparison.Ordinal);
        Assert.Contains("rules/segments/vip.js", world.Catalog.RefusedFiles.Keys);

        world.WriteRule("segments", "new-one", "return true;");
        await SegmentTests.WaitFor(() => Task.FromResult(world.Catalog.Find(RuleKind.Segment, "new-one") is not null));
        Assert.DoesNotContain(world.Catalog.RefusedFiles.Keys, k => k.EndsWith("new-one.js", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_changed_segment_script_rebuilds_the_segment_in_the_background()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "named-a", "return customer.name.startsWith('A');");
        world.Catalog.Reload();
        var a = await world.AddCustomerAsync("Anna");
        var b = await world.AddCustomerAsync("Bert");
        world.Catalog.Watch(TimeSpan.FromMilliseconds(100));
        await world.Segments.StartAsync(CancellationToken.None);
        try
        {
            await SegmentTests.WaitFor(async () => (await world.MembersAsync("named-a")).SequenceEqual([a.Id]));
            world.WriteRule("segments", "named-a", "return customer.name.startsWith('B');");
            await SegmentTests.WaitFor(async () => (await world.MembersAsync("named-a")).SequenceEqual([b.Id]));
            var member = Assert.Single(await world.Segments.MembersAsync("named-a"));
            Assert.Equal(world.Catalog.Find(RuleKind.Segment, "named-a")!.Hash, member.ScriptHash);
        }
        finally
        {
            await world.Segments.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task AddCrmRules_starts_with_the_core_in_a_real_host()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-rules-host", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(folder, "rules", "segments"));
        File.WriteAllText(Path.Combine(folder, "rules", "segments", "everyone.js"), "return true;");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = folder, DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Store:DataDirectory"] = Path.Combine(folder, "data"), ["Rules:ChangePollInterval"] = "00:00:00.050" });
        builder.Services.AddCrmCore(builder.Configuration);
        builder.Services.AddCrmRules(builder.Configuration);
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var store = host.Services.GetRequiredService<CrmEngine.Core.Storage.IStoreProvider>().ForActor("user:test");
            var c = await store.Customers.CreateAsync(new CrmEngine.Abstractions.Model.Customer { Name = "Z" });
            var segments = host.Services.GetRequiredService<SegmentService>();
            // The rebuild stores its state after the members: wait for both.
            await SegmentTests.WaitFor(async () => await segments.IsMemberAsync("everyone", c.Id) && await segments.StateAsync("everyone") is not null);
            Assert.NotNull(host.Services.GetRequiredService<IRuleEngine>());
            Assert.Equal(1, (await segments.StateAsync("everyone"))!.Rebuilds); // one rebuild at first start, not one per start step
            Assert.True(segments.IsTimeDependent(host.Services.GetRequiredService<RuleCatalog>().Find(RuleKind.Segment, "everyone")!) is false);
        }
        finally
        {
            await host.StopAsync();
        }
    }
}

public class AdministrationTests
{
    [Fact]
    public async Task The_command_line_operations_work_offline_on_a_stopped_database()
    {
        using var world = new TestWorld();
        world.WriteRule("segments", "big", "return customer.totalSpent > 100;");
        var c = await world.AddCustomerAsync("Rich");
        await world.AddOrderAsync(c.Id, 500, 1);
        var poor = await world.AddCustomerAsync("Poor");
        world.Database.Dispose();

        using (var admin = CrmEngine.Rules.Admin.RulesAdministration.OpenOffline(
                   new CrmEngine.Core.StoreOptions { DataDirectory = world.Folder, FileName = "crm.db" },
                   new RulesOptions { Directory = "rules", Workers = 1 }, world.Folder))
        {
            Assert.Contains("+1 -0", await admin.RebuildAsync(null), StringComparison.Ordinal);
            var listed = await admin.ListAsync();
            Assert.Contains("1 members", listed, StringComparison.Ordinal);
            Assert.Contains("(1 rebuilds)", listed, StringComparison.Ordinal);
            Assert.DoesNotContain("time-dependent", listed, StringComparison.Ordinal); // totalSpent does not change with time
            Assert.Contains(c.Id, await admin.MembersAsync("big"), StringComparison.Ordinal);
            var why = await admin.ExplainAsync("big", poor.Id);
            Assert.Contains("NOT in segment big", why, StringComparison.Ordinal);
            Assert.Contains("read customer.totalSpent = 0", why, StringComparison.Ordinal);
            var (text, ok) = await admin.TestAsync(Path.Combine(world.RulesFolder, "segments", "big.js"), [c.Id], 0);
            Assert.True(ok);
            Assert.Contains("returned true", text, StringComparison.Ordinal);
        }
    }
}
