using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security.Tests;

/// <summary>Visible-record paging and ownership transfer over real records in the store.</summary>
public sealed class RecordTests
{
    [Fact]
    public async Task Paging_as_a_salesperson_returns_exactly_the_visible_customers_once_each_in_id_order()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var store = engine.Store();
        var owners = new string?[] { "u-salesperson", "other", "team:t-sales", "same", null, "child", "u-salesperson", "mate" };
        var created = new List<Customer>();
        for (var i = 0; i < 40; i++)
        {
            created.Add(await store.Customers.CreateAsync(new Customer { Name = $"C{i:00}", Owner = owners[i % owners.Length] }));
        }

        // One customer of "other" is shared with the salesperson.
        var shared = created.First(c => c.Owner == "other");
        await engine.Security.ShareAsync("customer", shared.Id, "user:u-salesperson", [Privilege.Read], "admin");
        var access = await engine.Security.ContextForAsync("u-salesperson");
        var filter = access.Filter("customer");
        var expected = created.Where(c => c.Owner is "u-salesperson" or "team:t-sales" || c.Id == shared.Id).Select(c => c.Id).Order(StringComparer.Ordinal).ToList();

        var seen = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await VisibleRecords.PageAsync(store.Customers, filter, c => c.Owner, 4, after);
            seen.AddRange(page.Select(c => c.Id));
            if (page.Count < 4)
            {
                break;
            }

            after = page[^1].Id;
        }

        Assert.Equal(expected, seen);
        Assert.Equal(expected.Count, await VisibleRecords.CountAsync(store.Customers, filter, c => c.Owner));

        // Unit and below from sales (sales manager): the scan path (more owners, plus records of unknown owners stay out).
        var manager = (await engine.Security.ContextForAsync("u-sales-manager")).Filter("customer");
        var managed = await VisibleRecords.PageAsync(store.Customers, manager, c => c.Owner, 100);
        Assert.Equal(created.Where(c => c.Owner is "u-salesperson" or "team:t-sales" or "same" or "child" or "mate").Select(c => c.Id).Order(StringComparer.Ordinal),
            managed.Select(c => c.Id));
        // The auditor sees all, including unowned ones; a deactivated user sees nothing.
        Assert.Equal(40, await VisibleRecords.CountAsync(store.Customers, (await engine.Security.ContextForAsync("u-auditor")).Filter("customer"), c => c.Owner));
        await engine.Security.DeactivateUserAsync("u-salesperson", "admin", DateTimeOffset.UtcNow);
        Assert.Empty(await VisibleRecords.PageAsync(store.Customers, (await engine.Security.ContextForAsync("u-salesperson")).Filter("customer"), c => c.Owner));
    }

    [Fact]
    public async Task Transfer_moves_customers_with_open_work_one_audited_write_each_and_a_rerun_after_an_interruption_finishes_without_repeating()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        var store = engine.Store();
        var customers = new List<Customer>();
        for (var i = 0; i < 6; i++)
        {
            var c = await store.Customers.CreateAsync(new Customer { Name = $"Kunde {i}", Owner = "same" });
            customers.Add(c);
            await store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "call back", Owner = "same", Status = ActivityStatus.Planned });
            await store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "old visit", Owner = "same", Status = ActivityStatus.Done });
            await store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "colleague's", Owner = "other", Status = ActivityStatus.Planned });
            await store.Orders.CreateAsync(new Order { CustomerId = c.Id, Owner = "same", Status = OrderStatus.Confirmed });
            await store.Orders.CreateAsync(new Order { CustomerId = c.Id, Owner = "same", Status = OrderStatus.Paid });
        }

        var untouched = await store.Customers.CreateAsync(new Customer { Name = "Someone else's", Owner = "other" });
        await engine.Security.DeactivateUserAsync("same", "admin", DateTimeOffset.UtcNow);

        // Interrupted after the second customer (as if the process were stopped).
        using var cts = new CancellationTokenSource();
        var reports = 0;
        var progress = new SyncProgress(_ =>
        {
            if (++reports == 2)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.Transfer.TransferAsync("same", "child", true, "admin", progress, cts.Token));
        var first = (await store.Customers.FindAsync(IndexedField.Owner, "child")).Count;
        Assert.InRange(first, 2, 3);

        var result = await engine.Transfer.TransferAsync("same", "child", true, "admin");
        Assert.Equal(6 - first, result.Customers);
        var again = await engine.Transfer.TransferAsync("same", "child", true, "admin");
        Assert.Equal((0, 0, 0), (again.Customers, again.Activities, again.Orders));

        foreach (var c in customers)
        {
            Assert.Equal("child", (await store.Customers.GetAsync(c.Id))!.Owner);
            var history = await store.Audit.ForEntityAsync(EntityNames.Customer, c.Id);
            var ownerChanges = history.Where(h => h.Changes.Any(f => f.Field.Equals("owner", StringComparison.OrdinalIgnoreCase))).ToList();
            Assert.Single(ownerChanges.Skip(1)); // the create set the owner; exactly one write moved it
            Assert.Equal("admin", ownerChanges[^1].Actor);
            Assert.Equal(["Owner"], ownerChanges[^1].Changes.Select(f => f.Field).Where(f => f is not ("Version" or "UpdatedAt")));

            var activities = await store.Activities.FindAsync(IndexedField.CustomerId, c.Id);
            Assert.Equal("child", activities.Single(a => a.Subject == "call back").Owner);
            Assert.Equal("same", activities.Single(a => a.Subject == "old visit").Owner);
            Assert.Equal("other", activities.Single(a => a.Subject == "colleague's").Owner);
            var orders = await store.Orders.FindAsync(IndexedField.CustomerId, c.Id);
            Assert.Equal("child", orders.Single(o => o.Status == OrderStatus.Confirmed).Owner);
            Assert.Equal("same", orders.Single(o => o.Status == OrderStatus.Paid).Owner);
            foreach (var moved in activities.Where(a => a.Owner == "child"))
            {
                Assert.Equal(2, (await store.Audit.ForEntityAsync(EntityNames.Activity, moved.Id)).Count);
            }
        }

        Assert.Equal("other", (await store.Customers.GetAsync(untouched.Id))!.Owner);

        // Refusals: a deactivated successor, an acting user without assign rights.
        var ex = await Assert.ThrowsAsync<SecurityAdminException>(() => engine.Transfer.TransferAsync("child", "same", false, "admin"));
        Assert.Contains("--to 'same' is not an active user", ex.Message, StringComparison.Ordinal);
        Assert.Equal("to", ex.Field);
        var denied = await Assert.ThrowsAsync<SecurityDeniedException>(() => engine.Transfer.TransferAsync("child", "other", false, "u-auditor"));
        Assert.Contains("denied (customer:assign)", denied.Message, StringComparison.Ordinal);
        Assert.Equal("customer:assign", denied.Decision.Missing);
        Assert.Equal(6, (await store.Customers.FindAsync(IndexedField.Owner, "child")).Count);
    }

    /// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
