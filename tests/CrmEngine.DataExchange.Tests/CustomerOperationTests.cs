using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api;
using CrmEngine.Core;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Customers;
using CrmEngine.DataExchange.Duplicates;

namespace CrmEngine.DataExchange.Tests;

public sealed class CustomerOperationTests
{
    private static Customer Card(string name, string? email = null, string? phone = null, string? postcode = null, string? city = null) => new()
    {
        Name = name,
        Emails = email is null ? [] : [email],
        Phones = phone is null ? [] : [phone],
        Addresses = postcode is null && city is null ? [] : [new Address { PostalCode = postcode, City = city }],
    };

    [Fact]
    public void Jaro_winkler_on_token_sorted_names_ignores_word_order_case_accents_and_legal_forms()
    {
        Assert.Equal(1.0, NameSimilarity.JaroWinkler(DuplicateKeys.NameKey("Müller Bau GmbH"), DuplicateKeys.NameKey("BAU MULLER")));
        Assert.Equal(0.961, Math.Round(NameSimilarity.JaroWinkler("martha", "marhta"), 3));
        Assert.True(NameSimilarity.JaroWinkler(DuplicateKeys.NameKey("Schmidt Bau"), DuplicateKeys.NameKey("Schmitt Bau")) >= 0.92);
        Assert.True(NameSimilarity.JaroWinkler(DuplicateKeys.NameKey("Schmidt Bau"), DuplicateKeys.NameKey("Weber Elektro")) < 0.7);
    }

    [Fact]
    public void A_letter_swapped_with_a_neighbour_or_with_the_space_between_words_stays_above_the_threshold()
    {
        // A swap with the space splits the words differently: the token-sorted comparison alone falls far below 0.92.
        Assert.True(NameSimilarity.JaroWinkler(DuplicateKeys.NameKey("Kurz Anlagenbau"), DuplicateKeys.NameKey("Kur zAnlagenbau")) < 0.8);
        Assert.True(NameSimilarity.ForNames("Kurz Anlagenbau", "Kur zAnlagenbau") >= 0.92);
        Assert.True(NameSimilarity.ForNames("Schulz Logistik", "Shculz Logistik") >= 0.92);
        Assert.True(NameSimilarity.ForNames("Schulz Logistik", "Weber Elektro") < 0.7);

        // And the scan's blocks survive both slips: one block is shared.
        static HashSet<string> Blocks(string name)
        {
            var key = DuplicateKeys.NameKey(name);
            return DuplicateKeys.NameBlocks(key).Concat(DuplicateKeys.SwapBlocks(key, DuplicateKeys.Squash(name))).ToHashSet();
        }

        Assert.True(Blocks("Kurz Anlagenbau").Overlaps(Blocks("Kur zAnlagenbau")));
        Assert.True(Blocks("Schulz").Overlaps(Blocks("Shculz")));
    }

    [Fact]
    public async Task Creates_are_blocked_on_the_same_email_and_tagged_on_the_same_phone_or_a_similar_name_at_the_same_postcode()
    {
        await using var engine = await Engine.StartAsync();
        var store = engine.Store();
        var first = await store.Customers.CreateAsync(Card("Schmidt Bau GmbH", "info@schmidt.test", "+49 30 1111", "10115", "Berlin"));

        var blocked = await Assert.ThrowsAsync<ValidationException>(() => store.Customers.CreateAsync(Card("Other", "INFO@schmidt.test")));
        Assert.Contains($"duplicate of customer {first.Id} 'Schmidt Bau GmbH': same e-mail info@schmidt.test", blocked.Message);
        Assert.Equal("Emails", blocked.Errors.Single().Field);

        var samePhone = await store.Customers.CreateAsync(Card("Someone", phone: "+49 (30) 1111"));
        Assert.Contains(DuplicateGuard.Tag, samePhone.Tags);
        Assert.Equal(first.Id, samePhone.Custom[DuplicateGuard.OtherField].Text);

        var similar = await store.Customers.CreateAsync(Card("Schmitt Bau", postcode: "10115"));
        Assert.Equal(first.Id, similar.Custom[DuplicateGuard.OtherField].Text);
        var elsewhere = await store.Customers.CreateAsync(Card("Schmitt Bau", postcode: "80331"));
        Assert.DoesNotContain(DuplicateGuard.Tag, elsewhere.Tags);
        Assert.Equal(4, await store.Customers.CountAsync());
    }

    [Fact]
    public async Task Import_with_the_merge_action_merges_a_row_into_the_similar_customer_instead_of_creating_one()
    {
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:Duplicates:Name"] = "Merge", ["DataExchange:Duplicates:Phone"] = "Block" });
        var existing = await engine.Store().Customers.CreateAsync(Card("Weber Elektro KG", postcode: "50667", city: "Köln"));
        var file = engine.File("rows.csv");
        await File.WriteAllTextAsync(file, "name,address.postalCode,tags,phones\nWeber Elektro,50667,electric,\nNew Phone Co,,,+49 30 1111\n");

        var summary = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest());

        Assert.Equal((1L, 1L, 0L), (summary.Created, summary.Updated, summary.Rejected));
        Assert.Contains("electric", (await engine.Store().Customers.GetAsync(existing.Id))!.Tags);
        Assert.Equal(2, await engine.Store().Customers.CountAsync());

        // A later file whose phone matches a stored customer under a Block rule is rejected, naming it.
        var later = engine.File("later.csv");
        await File.WriteAllTextAsync(later, "name,phones\nThird Co,+49 30 1111\n");
        var third = await engine.Get<CustomerImporter>().ImportFileAsync(later, new ImportRequest());
        Assert.Equal(1, third.Rejected);
        Assert.Equal("phones", third.FirstRejects.Single().Column);
        Assert.Contains("duplicate of customer", third.FirstRejects.Single().Reason);
    }

    [Fact]
    public async Task Duplicate_scan_finds_seeded_groups_by_email_phone_and_similar_name()
    {
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:Duplicates:Email"] = "Off", ["DataExchange:Duplicates:Phone"] = "Off", ["DataExchange:Duplicates:Name"] = "Off" });
        var store = engine.Store();
        await store.Customers.CreateManyAsync(Enumerable.Range(0, 300).Select(i => Card($"Company {i} Handels", $"c{i}@x.test", $"+1 200 {i:D6}", $"{20000 + i}")));

        var a = await store.Customers.CreateAsync(Card("Alpha Trading", "Same@Mail.test", postcode: "11111"));
        var b = await store.Customers.CreateAsync(Card("Totally Different", "same@mail.test", postcode: "22222"));
        var c = await store.Customers.CreateAsync(Card("Beta", phone: "+44 20 1234 5678"));
        var d = await store.Customers.CreateAsync(Card("Gamma", phone: "+44 (20) 12345678"));
        var e = await store.Customers.CreateAsync(Card("Kaiser Logistik GmbH", postcode: "33333"));
        var f = await store.Customers.CreateAsync(Card("Kayser Logistik", postcode: "33 333"));
        var outFile = engine.File("groups.csv");

        var result = await engine.Get<DuplicateScanner>().ScanAsync(outFile);

        Assert.Equal(306, result.Customers);
        Assert.Equal(3, result.Groups);
        var groups = result.Members.GroupBy(m => m.Group).Select(g => (Ids: g.Select(m => m.CustomerId).Order().ToArray(), g.First().Rule)).ToList();
        Assert.Contains(groups, g => g.Ids.SequenceEqual(new[] { a.Id, b.Id }.Order()) && g.Rule == "email");
        Assert.Contains(groups, g => g.Ids.SequenceEqual(new[] { c.Id, d.Id }.Order()) && g.Rule == "phone");
        Assert.Contains(groups, g => g.Ids.SequenceEqual(new[] { e.Id, f.Id }.Order()) && g.Rule == "name");
        var lines = await File.ReadAllLinesAsync(outFile);
        Assert.Equal("group,customerId,name,rule,score", lines[0].TrimStart('\uFEFF'));
        Assert.Equal(7, lines.Length);
    }

    [Fact]
    public async Task Merge_combines_cards_moves_records_leaves_a_redirect_and_is_recorded_and_can_run_again()
    {
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:Duplicates:Email"] = "Off" });
        var store = engine.Store();
        var keep = await store.Customers.CreateAsync(new Customer { Name = "Acme", Emails = ["a@acme.test"], Tags = ["key"], ExternalIds = { ["erp"] = "E1" } });
        var remove = await store.Customers.CreateAsync(new Customer
        {
            Name = "ACME Inc", Emails = ["A@acme.test", "b@acme.test"], Phones = ["+1 555 1"], Owner = "rep-2", Tags = ["web"],
            ExternalIds = { ["shop"] = "S9" }, Contacts = [new ContactPerson { Id = "c1", Name = "Bob", Email = "bob@acme.test" }],
        });
        var activity = await store.Activities.CreateAsync(new Activity { CustomerId = remove.Id, Subject = "Call Bob" });
        var order = await store.Orders.CreateAsync(new Order { CustomerId = remove.Id, Lines = [new OrderLine { Description = "Widget", Quantity = 1, UnitPrice = 5 }] });
        var consent = await store.Consents.CreateAsync(new ConsentEntry { CustomerId = remove.Id, Purpose = "newsletter", Granted = true, Source = "web form" });

        var result = await engine.Get<CustomerMerger>().MergeAsync(keep.Id, remove.Id, false, "alice");

        Assert.Equal((1, 1, 1), (result.MovedActivities, result.MovedOrders, result.MovedConsents));
        var kept = (await store.Customers.GetAsync(keep.Id))!;
        Assert.Equal("Acme", kept.Name);
        Assert.Equal(["a@acme.test", "b@acme.test"], kept.Emails);
        Assert.Equal(["key", "web"], kept.Tags);
        Assert.Equal("rep-2", kept.Owner);
        Assert.Equal("S9", kept.ExternalIds["shop"]);
        Assert.Equal("Bob", kept.Contacts.Single().Name);
        Assert.Null(await store.Customers.GetAsync(remove.Id));
        Assert.Equal(keep.Id, (await store.Activities.GetAsync(activity.Id))!.CustomerId);
        Assert.Equal(keep.Id, (await store.Orders.GetAsync(order.Id))!.CustomerId);
        Assert.Equal(keep.Id, (await store.Consents.GetAsync(consent.Id))!.CustomerId);
        Assert.Equal(keep.Id, await engine.Get<ICustomerRedirects>().ResolveAsync(remove.Id));
        Assert.Null(await engine.Get<ICustomerRedirects>().ResolveAsync(keep.Id));

        var deleted = await store.Audit.ForEntityAsync(EntityNames.Customer, remove.Id);
        Assert.Equal(ChangeOperation.Delete, deleted[^1].Operation);
        Assert.Equal("merge:alice", deleted[^1].Actor);
        Assert.Equal("merge:alice", (await store.Audit.ForEntityAsync(EntityNames.Activity, activity.Id))[^1].Actor);

        var again = await engine.Get<CustomerMerger>().MergeAsync(keep.Id, remove.Id, false, "alice");
        Assert.True(again.AlreadyMerged);

        // A chain resolves to the last customer.
        var third = await store.Customers.CreateAsync(new Customer { Name = "Acme Holding" });
        await engine.Get<CustomerMerger>().MergeAsync(third.Id, keep.Id, false, "alice");
        Assert.Equal(third.Id, await engine.Get<ICustomerRedirects>().ResolveAsync(remove.Id));
    }

    [Fact]
    public async Task Merge_refuses_conflicting_external_ids_unless_forced_and_changes_nothing()
    {
        await using var engine = await Engine.StartAsync();
        var store = engine.Store();
        var keep = await store.Customers.CreateAsync(new Customer { Name = "A", ExternalIds = { ["erp"] = "1" } });
        var remove = await store.Customers.CreateAsync(new Customer { Name = "B", ExternalIds = { ["erp"] = "2" } });

        var ex = await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerMerger>().MergeAsync(keep.Id, remove.Id, false, "t"));
        Assert.Contains("external id erp: 1 vs 2", ex.Message);
        Assert.NotNull(await store.Customers.GetAsync(remove.Id));
        Assert.Equal(1, (await store.Customers.GetAsync(keep.Id))!.Version);

        var forced = await engine.Get<CustomerMerger>().MergeAsync(keep.Id, remove.Id, true, "t");
        Assert.Equal("1", (await store.Customers.GetAsync(keep.Id))!.ExternalIds["erp"]);
        Assert.Single(forced.OverriddenConflicts);
    }

    [Fact]
    public async Task Erase_removes_personal_data_from_card_records_and_audit_keeps_a_stub_and_the_export_shows_what_remains()
    {
        await using var engine = await Engine.StartAsync();
        var store = engine.Store();
        var customer = await store.Customers.CreateAsync(new Customer
        {
            Name = "Erika Mustermann", Kind = CustomerKind.Person, Emails = ["erika@example.test"], Phones = ["+49 170 1234567"],
            Addresses = [new Address { Line1 = "Heidestraße 17", PostalCode = "51147", City = "Köln" }], Owner = "rep-1",
        });
        customer.Emails.Add("erika.m@example.test");
        customer = await store.Customers.UpdateAsync(customer);
        var activity = await store.Activities.CreateAsync(new Activity { CustomerId = customer.Id, Subject = "Call Erika about her divorce", Body = "private" });
        await store.Consents.CreateAsync(new ConsentEntry { CustomerId = customer.Id, Purpose = "newsletter", Granted = false, Source = "phone call with Erika" });

        var before = await engine.Get<CustomerDataExport>().ExportJsonAsync(customer.Id);
        Assert.Contains("erika@example.test", before);
        Assert.Contains("Call Erika about her divorce", before);

        var result = await engine.Get<CustomerEraser>().EraseAsync(customer.Id, "GDPR request 2026-17", "dpo");

        Assert.Equal(1, result.Activities);
        var card = (await store.Customers.GetAsync(customer.Id))!;
        Assert.Equal(CustomerEraser.Erased, card.Name);
        Assert.Empty(card.Emails);
        Assert.Empty(card.Phones);
        Assert.Empty(card.Addresses);
        Assert.Equal("rep-1", card.Owner);
        Assert.Equal(CustomerEraser.Erased, (await store.Activities.GetAsync(activity.Id))!.Subject);

        var after = await engine.Get<CustomerDataExport>().ExportJsonAsync(customer.Id);
        foreach (var secret in new[] { "erika", "Erika", "Mustermann", "Heidestra", "1234567", "divorce", "private" })
        {
            Assert.DoesNotContain(secret, after);
        }

        Assert.Contains("GDPR request 2026-17", after);
        Assert.Contains("\"erasedBy\": \"dpo\"", after);
        var audit = await store.Audit.ForEntityAsync(EntityNames.Customer, customer.Id);
        Assert.Equal(3, audit.Count);
        Assert.Equal("erase:dpo", audit[^1].Actor);
        Assert.Contains(audit[0].Changes, c => c.Field.StartsWith("Name", StringComparison.Ordinal) && c.After == "\"[erased]\"");

        // Running it again is harmless.
        await engine.Get<CustomerEraser>().EraseAsync(customer.Id, "GDPR request 2026-17", "dpo");
        Assert.Equal(CustomerEraser.Erased, (await store.Customers.GetAsync(customer.Id))!.Name);
    }
}
