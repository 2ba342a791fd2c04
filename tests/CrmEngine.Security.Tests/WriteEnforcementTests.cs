using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;

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

    [Fact]
    public async Task Product_writes_as_a_user_need_the_product_privilege_on_every_store_path_and_refusals_store_nothing()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        await engine.EnforceWritesAsync();
        var listed = await engine.Store("test").Products.CreateAsync(new Product { Sku = "W-1", Name = "Widget", ListPrice = 5 });

        // A salesperson reads products only: a plugin or import acting as her can neither add, change nor remove one.
        var anna = engine.Store("u-salesperson");
        var ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Products.CreateAsync(new Product { Sku = "X-1", Name = "Smuggled" }));
        Assert.Contains("access: denied (product:create)", ex.Message, StringComparison.Ordinal);
        var cheaper = (await anna.Products.GetAsync(listed.Id))!;
        cheaper.ListPrice = 1;
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Products.UpdateAsync(cheaper));
        Assert.Contains("access: denied (product:write)", ex.Message, StringComparison.Ordinal);
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Products.DeleteAsync(listed.Id));
        Assert.Contains("access: denied (product:delete)", ex.Message, StringComparison.Ordinal);
        var results = await anna.Products.WriteManyAsync([new BulkWrite<Product>(BulkOperation.Create, new Product { Sku = "X-2", Name = "Bulk" })]);
        Assert.Contains("denied (product:create)", Assert.Single(results).Error!.Message, StringComparison.Ordinal);
        Assert.Equal(5, (await engine.Store().Products.GetAsync(listed.Id))!.ListPrice);
        Assert.Equal(1, await engine.Store().Products.CountAsync());

        // The integration role creates and changes products but deletes none; the administrator may; engine writers pass.
        var integration = engine.Store("u-integration");
        var added = await integration.Products.CreateAsync(new Product { Sku = "I-1", Name = "From the ERP" });
        added.ListPrice = 9;
        added = await integration.Products.UpdateAsync(added);
        ex = await Assert.ThrowsAsync<ValidationException>(() => integration.Products.DeleteAsync(added.Id));
        Assert.Contains("access: denied (product:delete)", ex.Message, StringComparison.Ordinal);
        await engine.Store("u-administrator").Products.DeleteAsync(added.Id);
        cheaper = (await engine.Store("plugin:erpsync").Products.GetAsync(listed.Id))!;
        cheaper.ListPrice = 4;
        Assert.Equal(4, (await engine.Store("plugin:erpsync").Products.UpdateAsync(cheaper)).ListPrice);
    }
}
