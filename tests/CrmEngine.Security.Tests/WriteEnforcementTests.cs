using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security.Tests;

public sealed class WriteEnforcementTests
{
    [Fact]
    public async Task Writes_made_as_a_user_are_checked_in_the_pipeline_and_refusals_name_the_privilege_and_store_nothing()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        await engine.EnforceWritesAsync();
        var anna = engine.Store("u-salesperson");
        var other = await engine.Store("test").Customers.CreateAsync(new Customer { Name = "Other's", Owner = "other" });

        // Created without an owner: the creating user owns it.
        var mine = await anna.Customers.CreateAsync(new Customer { Name = "Mine" });
        Assert.Equal("u-salesperson", mine.Owner);

        other.Name = "Taken over";
        var ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Customers.UpdateAsync(other));
        Assert.Contains("access: denied (customer:write)", ex.Message, StringComparison.Ordinal);
        Assert.Equal("Other's", (await anna.Customers.GetAsync(other.Id))!.Name);

        mine.CreditLevel = "A";
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Customers.UpdateAsync(mine));
        Assert.Contains("denied (customer.creditLevel:write)", ex.Message, StringComparison.Ordinal);
        mine.CreditLevel = null;

        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Customers.DeleteAsync(mine.Id));
        Assert.Contains("denied (customer:delete)", ex.Message, StringComparison.Ordinal);
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Customers.CreateAsync(new Customer { Name = "For a colleague", Owner = "same" }));
        Assert.Contains("denied (customer:create)", ex.Message, StringComparison.Ordinal);

        // Her own record she may write and give away (assign at own depth); then it is out of her reach.
        mine.Name = "Mine, renamed";
        mine = await anna.Customers.UpdateAsync(mine);
        mine.Owner = "same";
        mine = await anna.Customers.UpdateAsync(mine);
        mine.Name = "Again";
        await Assert.ThrowsAsync<ValidationException>(() => anna.Customers.UpdateAsync(mine));

        // Writers that are not users (plugins, rules, keys, the test itself) pass as before.
        other.Name = "Changed by a plugin";
        Assert.Equal("Changed by a plugin", (await engine.Store("plugin:sales").Customers.UpdateAsync(other)).Name);
        // A deactivated user writes nothing.
        await engine.Security.DeactivateUserAsync("u-administrator", "admin", DateTimeOffset.UtcNow);
        ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store("u-administrator").Activities.CreateAsync(new Activity { CustomerId = other.Id, Subject = "x" }));
        Assert.Contains("user 'u-administrator' is deactivated", ex.Message, StringComparison.Ordinal);
        Assert.Empty(await engine.Store().Activities.FindAsync(IndexedField.CustomerId, other.Id));
    }
}
