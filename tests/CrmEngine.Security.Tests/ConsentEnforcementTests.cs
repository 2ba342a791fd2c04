using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security.Tests;

/// <summary>Consent entries written through a store acting as a user: their own privilege and their customer's readability.</summary>
public sealed class ConsentEnforcementTests
{
    private static ConsentEntry Entry(string customerId, bool granted) =>
        new() { CustomerId = customerId, Purpose = "newsletter", Channel = ConsentChannel.Email, Granted = granted, Source = "test", At = DateTimeOffset.UtcNow };

    [Fact]
    public async Task A_user_adds_to_or_changes_the_consent_ledger_only_of_customers_it_may_read_and_only_with_the_consent_privilege()
    {
        await using var engine = new TestEngine();
        await Fixture.SeedAsync(engine);
        await engine.EnforceWritesAsync();
        var admin = engine.Store("test");
        var mine = await admin.Customers.CreateAsync(new Customer { Name = "Mine", Owner = "u-salesperson" });
        var others = await admin.Customers.CreateAsync(new Customer { Name = "Other's", Owner = "other" });
        var granted = await admin.Consents.CreateAsync(Entry(others.Id, granted: true));
        var anna = engine.Store("u-salesperson");

        // Her own customer: consent:create at all, the customer readable.
        Assert.False(string.IsNullOrEmpty((await anna.Consents.CreateAsync(Entry(mine.Id, granted: true))).Id));

        // Another unit's customer: neither a new entry nor a withdrawal by changing the stored one; nothing stored.
        var ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Consents.CreateAsync(Entry(others.Id, granted: false)));
        Assert.Contains("access: denied (customer:read)", ex.Message, StringComparison.Ordinal);
        granted.Granted = false;
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Consents.UpdateAsync(granted));
        Assert.Contains("denied (consent:write)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("denied (customer:read)", ex.Message, StringComparison.Ordinal);
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Consents.DeleteAsync(granted.Id));
        Assert.Contains("denied (consent:delete)", ex.Message, StringComparison.Ordinal);
        // Moving an entry onto her own customer still needs to read the one it came from.
        granted.CustomerId = mine.Id;
        ex = await Assert.ThrowsAsync<ValidationException>(() => anna.Consents.UpdateAsync(granted));
        Assert.Contains("denied (customer:read)", ex.Message, StringComparison.Ordinal);
        var ledger = await admin.Consents.FindAsync(IndexedField.CustomerId, others.Id);
        Assert.True(Assert.Single(ledger).Granted);

        // The auditor reads every customer but may not add consents.
        ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store("u-auditor").Consents.CreateAsync(Entry(others.Id, granted: false)));
        Assert.Contains("denied (consent:create)", ex.Message, StringComparison.Ordinal);

        // Marketing keeps consents of every customer it reads, though it may not write the customer (shipped roles).
        var withdrawn = await engine.Store("u-marketing").Consents.CreateAsync(Entry(others.Id, granted: false));
        Assert.Equal(others.Id, withdrawn.CustomerId);
        // Engine writers (the unsubscribe link, plugins) are not checked.
        await engine.Store("plugin:forms").Consents.CreateAsync(Entry(others.Id, granted: true));
        Assert.Equal(3, (await admin.Consents.FindAsync(IndexedField.CustomerId, others.Id)).Count);
    }
}
