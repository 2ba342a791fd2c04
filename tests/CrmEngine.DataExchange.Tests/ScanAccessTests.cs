using CrmEngine.Abstractions.Model;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Api;
using CrmEngine.DataExchange.Duplicates;
using CrmEngine.Security;

namespace CrmEngine.DataExchange.Tests;

/// <summary>
/// Duplicate scans through the API (issue #9, review finding 5): one runs at a time, starting one needs customer export at
/// depth all, and a reader sees only the groups' members they may read.
/// </summary>
public sealed class ScanAccessTests
{
    private const string Seed = """
        {
          "units": [ { "id": "org", "name": "Org" } ],
          "roles": [
            { "id": "sales", "name": "Salesperson", "privileges": { "customer": "create:own read:own write:own export:own" } },
            { "id": "admin", "name": "Administrator", "privileges": { "*": "read:all export:all" } }
          ],
          "users": [
            { "id": "anna", "name": "Anna", "unit": "org", "roles": ["sales"] },
            { "id": "bob", "name": "Bob", "unit": "org", "roles": ["sales"] },
            { "id": "root", "name": "Root", "unit": "org", "roles": ["admin"] }
          ]
        }
        """;

    private static readonly DuplicateScanResult Empty = new(0, 0, 0, 0, 0, TimeSpan.Zero, 0, []);

    [Fact]
    public async Task A_second_scan_is_refused_naming_the_running_one_and_may_start_once_it_is_done()
    {
        var release = new TaskCompletionSource<DuplicateScanResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        var scans = new DuplicateScans(_ => Interlocked.Increment(ref calls) == 1 ? release.Task : Task.FromResult(Empty));

        var first = scans.Start("root", out var running);
        Assert.NotNull(first);
        Assert.Null(running);
        Assert.Null(scans.Start("mia", out running));
        Assert.Equal(first!.Id, running!.Id);
        Assert.Equal("root", running.StartedBy);

        release.SetResult(Empty);
        var until = DateTime.UtcNow.AddSeconds(60);
        while (scans.Get(first.Id)!.Status == "running" && DateTime.UtcNow < until)
        {
            await Task.Delay(20);
        }

        Assert.Equal("done", scans.Get(first.Id)!.Status);
        var second = scans.Start("mia", out running);
        Assert.NotNull(second);
        Assert.NotEqual(first.Id, second!.Id);
    }

    [Fact]
    public async Task A_reader_sees_only_members_they_may_read_and_groups_of_at_least_two_of_them()
    {
        await using var engine = await Engine.StartAsync();
        var admin = new SecurityAdministration(new SecurityDirectory(engine.Get<IStoreProvider>()));
        await admin.SeedAsync(SeedFile.Parse(Seed, "seed.json"), "test");
        var store = engine.Store();
        var a1 = await store.Customers.CreateAsync(new Customer { Name = "Anna One", Owner = "anna" });
        var a2 = await store.Customers.CreateAsync(new Customer { Name = "Anna Two", Owner = "anna" });
        var a3 = await store.Customers.CreateAsync(new Customer { Name = "Anna Three", Owner = "anna" });
        var b1 = await store.Customers.CreateAsync(new Customer { Name = "Rival Holding", Owner = "bob" });
        var b2 = await store.Customers.CreateAsync(new Customer { Name = "Rival Holdings", Owner = "bob" });
        var result = new DuplicateScanResult(5, 3, 6, 0, 10, TimeSpan.FromSeconds(1), 0,
        [
            new(1, a1.Id, a1.Name, "phone", 1), new(1, b1.Id, b1.Name, "phone", 1),
            new(2, b1.Id, b1.Name, "name", 0.95), new(2, b2.Id, b2.Name, "name", 0.95),
            new(3, a2.Id, a2.Name, "email", 1), new(3, a3.Id, a3.Name, "email", 1),
        ]);

        var anna = await admin.ContextForAsync("anna");
        var seen = await DuplicateScans.ForReader(result, anna, store, default);
        Assert.Equal(1, seen.Groups);
        Assert.Equal(2, seen.CustomersInGroups);
        Assert.Equal(3, seen.Customers); // hers, not the store's five
        Assert.Equal([a2.Id, a3.Id], seen.Members.Select(m => m.CustomerId));
        Assert.All(seen.Members, m => Assert.Equal(1, m.Group));
        Assert.DoesNotContain(seen.Members, m => m.Name.Contains("Rival", StringComparison.Ordinal));

        var root = await admin.ContextForAsync("root");
        Assert.Same(result, await DuplicateScans.ForReader(result, root, store, default));

        // Starting a scan: export at depth all.
        var denied = DuplicateScans.MayStart(anna);
        Assert.False(denied.Allowed);
        Assert.Equal("customer:export", denied.Missing);
        Assert.True(DuplicateScans.MayStart(root).Allowed);
    }
}
