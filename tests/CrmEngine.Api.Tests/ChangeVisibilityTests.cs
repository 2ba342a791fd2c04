using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Endpoints;

namespace CrmEngine.Api.Tests;

/// <summary>The owner a change-feed entry is judged by: the record's owner as of that change, from its audit history.</summary>
public sealed class ChangeVisibilityTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);

    private static AuditEntry Entry(long sequence, ChangeOperation operation, params FieldChange[] changes) =>
        new(sequence, "customer", "c1", operation, At, "admin", changes);

    [Fact]
    public void A_change_is_judged_by_the_owner_after_it_and_a_delete_by_the_owner_before_it()
    {
        var history = new[]
        {
            Entry(3, ChangeOperation.Create, new FieldChange("Name", null, "\"Acme\""), new FieldChange("Owner", null, "\"anna\"")),
            Entry(5, ChangeOperation.Update, new FieldChange("Name", "\"Acme\"", "\"Acme GmbH\"")),
            Entry(8, ChangeOperation.Update, new FieldChange("Owner", "\"anna\"", "\"ben\"")),
            Entry(9, ChangeOperation.Update, new FieldChange("Owner", "\"ben\"", null)),
            Entry(12, ChangeOperation.Delete, new FieldChange("Name", "\"Acme GmbH\"", null)),
        };
        string? OwnerAt(long sequence, ChangeOperation operation) =>
            ChangeVisibility.OwnerAt(history, new ChangeRecord(sequence, "customer", "c1", operation, 1, At, "admin"));

        Assert.Equal("anna", OwnerAt(3, ChangeOperation.Create));
        Assert.Equal("anna", OwnerAt(5, ChangeOperation.Update));    // unchanged owner carries over
        Assert.Equal("ben", OwnerAt(8, ChangeOperation.Update));     // the transfer is seen by the new owner
        Assert.Null(OwnerAt(9, ChangeOperation.Update));             // owner removed
        Assert.Null(OwnerAt(12, ChangeOperation.Delete));

        var deletedWhileOwned = new[]
        {
            Entry(3, ChangeOperation.Create, new FieldChange("Owner", null, "\"anna\"")),
            Entry(4, ChangeOperation.Delete, new FieldChange("Owner", "\"anna\"", null)),
        };
        Assert.Equal("anna", ChangeVisibility.OwnerAt(deletedWhileOwned, new ChangeRecord(4, "customer", "c1", ChangeOperation.Delete, 2, At, "admin")));
    }

    [Fact]
    public void A_plugin_entity_change_is_judged_by_its_declared_owner_field_not_by_a_field_called_owner()
    {
        // acme_partner declares "accountManager" as its owner field; its "owner" field is just data.
        var history = new[]
        {
            Entry(3, ChangeOperation.Create, new FieldChange("owner", null, "\"ben\""), new FieldChange("accountManager", null, "\"anna\"")),
            Entry(6, ChangeOperation.Update, new FieldChange("AccountManager", "\"anna\"", "\"carl\"")),
        };
        string? OwnerAt(long sequence) =>
            ChangeVisibility.OwnerAt(history, new ChangeRecord(sequence, "acme_partner", "p1", ChangeOperation.Update, 1, At, "plugin:acme"), "accountManager");

        Assert.Equal("anna", OwnerAt(3));
        Assert.Equal("carl", OwnerAt(6));   // field names compared ignoring case
    }
}
