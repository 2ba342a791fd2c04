using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using Microsoft.Extensions.Time.Testing;

namespace CrmEngine.Core.Tests;

public class TimeTests
{
    [Fact]
    public async Task Timestamps_come_from_the_injected_time_provider()
    {
        var start = new DateTimeOffset(2030, 5, 6, 7, 8, 9, TimeSpan.Zero);
        var time = new FakeTimeProvider(start);
        using var engine = new TestEngine(time: time);

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        Assert.Equal((start, start), (c.CreatedAt, c.UpdatedAt));

        time.Advance(TimeSpan.FromHours(2));
        c.Name = "Renamed";
        var updated = await engine.Store.Customers.UpdateAsync(c);
        Assert.Equal((start, start.AddHours(2)), (updated.CreatedAt, updated.UpdatedAt));

        var feed = await engine.Store.Changes.ReadAsync(0);
        Assert.Equal([start, start.AddHours(2)], feed.Select(f => f.At));
        var audit = await engine.Store.Audit.ForEntityAsync(EntityNames.Customer, c.Id);
        Assert.Equal(start.AddHours(2), audit[1].At);
        Assert.Equal(ChangeOperation.Update, audit[1].Operation);
    }
}
