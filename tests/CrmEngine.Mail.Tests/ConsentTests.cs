using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Mail.Tests.Support;

namespace CrmEngine.Mail.Tests;

/// <summary>Who may receive what: consent for marketing, the transactional rule, bad requests.</summary>
public sealed class ConsentTests
{
    private static MailRequest Marketing(string customerId, string key, string purpose = "newsletter") => new()
    {
        Template = "campaign",
        CustomerId = customerId,
        Kind = MailKind.Marketing,
        Purpose = purpose,
        IdempotencyKey = key,
        Model = new Dictionary<string, object?> { ["campaign"] = new Dictionary<string, object?> { ["name"] = "Autumn" } },
    };

    [Fact]
    public async Task Marketing_needs_consent_for_the_purpose_on_email_and_the_latest_entry_decides()
    {
        using var temp = new TempFolder();
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp: null));
        var t0 = DateTimeOffset.UtcNow.AddDays(-10);

        var none = await world.CustomerAsync("No Consent", "none@example.com");
        var r1 = await world.Outbox.EnqueueAsync(Marketing(none.Id, "k1"));
        Assert.Equal(MailState.Suppressed, r1.State);
        Assert.Equal("no consent for 'newsletter' on e-mail", r1.Reason);

        var otherPurpose = await world.CustomerAsync("Other Purpose", "other@example.com");
        await world.ConsentAsync(otherPurpose.Id, "offers", true);
        await world.ConsentAsync(otherPurpose.Id, "newsletter", true, ConsentChannel.Sms);
        Assert.Equal(MailState.Suppressed, (await world.Outbox.EnqueueAsync(Marketing(otherPurpose.Id, "k2"))).State);

        var withdrawn = await world.CustomerAsync("Withdrawn", "withdrawn@example.com");
        await world.ConsentAsync(withdrawn.Id, "newsletter", true, at: t0);
        await world.ConsentAsync(withdrawn.Id, "Newsletter", false, ConsentChannel.Any, at: t0.AddDays(1));
        var r3 = await world.Outbox.EnqueueAsync(Marketing(withdrawn.Id, "k3"));
        Assert.Equal(MailState.Suppressed, r3.State);
        Assert.StartsWith("consent for 'newsletter' on e-mail withdrawn on", r3.Reason, StringComparison.Ordinal);

        var regranted = await world.CustomerAsync("Regranted", "regranted@example.com");
        await world.ConsentAsync(regranted.Id, "newsletter", false, at: t0);
        await world.ConsentAsync(regranted.Id, "newsletter", true, ConsentChannel.Any, at: t0.AddDays(2));
        var r4 = await world.Outbox.EnqueueAsync(Marketing(regranted.Id, "k4"));
        Assert.Equal(MailState.Pending, r4.State);
        Assert.Null(r4.Reason);

        var blacklisted = await world.CustomerAsync("Defaulter", "defaulter@example.com", c => { c.Blacklisted = true; c.BlacklistReason = "unpaid invoices"; });
        await world.ConsentAsync(blacklisted.Id, "newsletter", true);
        var r5 = await world.Outbox.EnqueueAsync(Marketing(blacklisted.Id, "k5"));
        // The blacklist reason is a protected field: never copied into the outbox or the log.
        Assert.Equal("customer is blacklisted", r5.Reason);
        Assert.Equal("customer is blacklisted", world.Message(r5.MessageId).LastError);
        Assert.DoesNotContain("unpaid invoices", world.Logs.All, StringComparison.Ordinal);

        await world.WaitForStateAsync(r4.MessageId, MailState.Sent);
        // Only the allowed message was written; the suppressed ones are kept with their reason and never sent.
        Assert.Single(Directory.GetFiles(world.PickupFolder, "*.eml"));
        var suppressed = (IReadOnlyList<MailMessageInfo>)world.Admin.List("suppressed", null, null).Body!;
        Assert.Equal(4, suppressed.Count);
        Assert.All(suppressed, m => Assert.False(string.IsNullOrEmpty(m.LastError)));
        Assert.Equal(0, suppressed.Sum(m => m.Attempts));

        // The same trigger again: still the first decision (Duplicate), even though consent was given meanwhile.
        await world.ConsentAsync(none.Id, "newsletter", true);
        var again = await world.Outbox.EnqueueAsync(Marketing(none.Id, "k1"));
        Assert.True(again.Duplicate);
        Assert.Equal(MailState.Suppressed, again.State);
    }

    [Fact]
    public async Task Transactional_mail_needs_no_consent_but_an_address_a_customer_on_file_and_no_blacklist()
    {
        using var temp = new TempFolder();
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp: null));
        var withdrawn = await world.CustomerAsync("Order Customer", "orders@example.com");
        await world.ConsentAsync(withdrawn.Id, "newsletter", false);
        var ok = await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = withdrawn.Id, IdempotencyKey = "t1" });
        Assert.Equal(MailState.Pending, ok.State);

        var noMail = await world.CustomerAsync("No Address", null);
        var r2 = await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = noMail.Id, IdempotencyKey = "t2" });
        Assert.Equal(MailState.Suppressed, r2.State);
        Assert.StartsWith("no e-mail address", r2.Reason, StringComparison.Ordinal);

        var bad = await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = noMail.Id, To = "not an address", IdempotencyKey = "t3" });
        Assert.Equal("'not an address' is not a valid e-mail address", bad.Reason);

        var gone = await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = "0000000000000000000000000", IdempotencyKey = "t4" });
        Assert.StartsWith("customer '0000000000000000000000000' does not exist", gone.Reason, StringComparison.Ordinal);

        var black = await world.CustomerAsync("Black", "black@example.com", c => { c.Blacklisted = true; c.BlacklistReason = "fraud"; });
        Assert.Equal("customer is blacklisted", (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = black.Id, IdempotencyKey = "t5" })).Reason);
        Assert.DoesNotContain("fraud", world.Logs.All, StringComparison.Ordinal);

        // A contact person is the recipient when named; an explicit address wins over both.
        var org = await world.CustomerAsync("ACME GmbH", "info@acme.example", c =>
        {
            c.Kind = CustomerKind.Organisation;
            c.Contacts = [new ContactPerson { Id = "c1", Name = "Jürgen Groß", Email = "juergen@acme.example" }];
        });
        var toContact = await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = org.Id, ContactId = "c1", IdempotencyKey = "t6" });
        var stored = world.Message(toContact.MessageId);
        Assert.Equal("juergen@acme.example", stored.To);
        Assert.Equal("Jürgen Groß", stored.ToName);
        Assert.Contains("Jürgen Groß", stored.Snapshot, StringComparison.Ordinal);

        await world.WaitForStateAsync(ok.MessageId, MailState.Sent);
        await world.WaitForStateAsync(toContact.MessageId, MailState.Sent);
    }

    [Fact]
    public async Task Bad_requests_are_refused_naming_the_field_and_nothing_is_stored()
    {
        using var temp = new TempFolder();
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp: null));
        var customer = await world.CustomerAsync("Field Check", "field@example.com");

        var cases = new (MailRequest Request, string Field)[]
        {
            (new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = " " }, "IdempotencyKey"),
            (new MailRequest { Template = "no-such-template", CustomerId = customer.Id, IdempotencyKey = "b2" }, "Template"),
            (new MailRequest { Template = "campaign", CustomerId = customer.Id, Kind = MailKind.Marketing, IdempotencyKey = "b3" }, "Purpose"),
            (new MailRequest { Template = "campaign", To = "x@example.com", Kind = MailKind.Marketing, Purpose = "n", IdempotencyKey = "b4" }, "CustomerId"),
            (new MailRequest { Template = "welcome", CustomerId = customer.Id, ContactId = "nope", IdempotencyKey = "b5" }, "ContactId"),
            (new MailRequest { Template = "welcome", CustomerId = customer.Id, Culture = "not a culture!", IdempotencyKey = "b6" }, "Culture"),
            (new MailRequest { Template = "order-confirmation", CustomerId = customer.Id, IdempotencyKey = "b7",
                Model = new Dictionary<string, object?> { ["order"] = "no-such-order" } }, "order 'no-such-order'"),
        };
        foreach (var (request, field) in cases)
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => world.Outbox.EnqueueAsync(request));
            Assert.Contains(field, ex.Message, StringComparison.Ordinal);
        }

        Assert.Empty((IReadOnlyList<MailMessageInfo>)world.Admin.List(null, null, null).Body!);
    }

    [Fact]
    public async Task The_snapshot_keeps_what_was_true_at_enqueue()
    {
        using var temp = new TempFolder();
        var settings = MailWorld.Settings(temp.Path, smtp: null);
        settings["Mail:Enabled"] = "false";
        await using var world = await MailWorld.StartAsync(temp.Path, settings);
        var customer = await world.CustomerAsync("Before Rename", "snap@example.com");
        var order = await world.Store.Orders.CreateAsync(new Order
        {
            CustomerId = customer.Id,
            Number = "SO-1001",
            Lines = [new OrderLine { Description = "Widget", Quantity = 2, UnitPrice = 12.5m }],
        });

        var result = await world.Outbox.EnqueueAsync(new MailRequest
        {
            Template = "order-confirmation",
            CustomerId = customer.Id,
            IdempotencyKey = "order-confirmation:" + order.Id,
            Model = new Dictionary<string, object?> { ["order"] = order.Id, ["note"] = "gift wrap" },
        });
        customer.Name = "After Rename";
        await world.Store.Customers.UpdateAsync(customer);

        var stored = world.Message(result.MessageId);
        Assert.Contains("Before Rename", stored.Snapshot, StringComparison.Ordinal);
        Assert.DoesNotContain("After Rename", stored.Snapshot, StringComparison.Ordinal);
        Assert.Contains("SO-1001", stored.Snapshot, StringComparison.Ordinal);
        Assert.Contains("gift wrap", stored.Snapshot, StringComparison.Ordinal);
        Assert.Equal(MailState.Pending, stored.State);
    }
}
