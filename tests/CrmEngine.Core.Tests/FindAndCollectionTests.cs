using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Core.Tests;

public class FindAndCollectionTests
{
    [Fact]
    public async Task Look_ups_normalise_email_phone_tag_and_external_ids()
    {
        using var engine = new TestEngine();
        var c = await engine.Store.Customers.CreateAsync(new Customer
        {
            Name = "Müller & Söhne",
            Emails = ["Info@Mueller.DE"],
            Phones = ["+49 (30) 123-45"],
            Tags = ["VIP"],
            Owner = "rep:7",
            ExternalIds = { ["erp"] = "C1002" },
            Contacts = [new ContactPerson { Name = "Anna", Email = "anna@mueller.de" }],
        });
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Other", Emails = ["other@example.com"], ExternalIds = { ["shop"] = "C1002" } });

        async Task<string?> One(string field, string value) => Assert.Single(await engine.Store.Customers.FindAsync(field, value)).Id;

        Assert.Equal(c.Id, await One(IndexedField.Email, "info@mueller.de"));
        Assert.Equal(c.Id, await One(IndexedField.Email, "ANNA@MUELLER.DE"));
        Assert.Equal(c.Id, await One(IndexedField.Phone, "+4930 12345"));
        Assert.Equal(c.Id, await One(IndexedField.Tag, "vip"));
        Assert.Equal(c.Id, await One(IndexedField.Owner, "rep:7"));
        Assert.Equal(c.Id, await One(IndexedField.ExternalId, "erp:C1002"));
        Assert.Equal(c.Id, await One(IndexedField.Name, "müller & söhne"));
        Assert.Empty(await engine.Store.Customers.FindAsync(IndexedField.Email, "info@mueller"));
        Assert.Empty(await engine.Store.Customers.FindAsync(IndexedField.Owner, "rep:"));

        // A changed record is found under its new keys only.
        c.Emails = ["new@mueller.de"];
        await engine.Store.Customers.UpdateAsync(c);
        Assert.Empty(await engine.Store.Customers.FindAsync(IndexedField.Email, "info@mueller.de"));
        Assert.Equal(c.Id, await One(IndexedField.Email, "new@mueller.de"));

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => engine.Store.Customers.FindAsync("city", "Berlin"));
        Assert.Contains("email", ex.Message);
    }

    [Fact]
    public async Task Find_and_list_page_in_id_order()
    {
        using var engine = new TestEngine();
        var created = await engine.Store.Customers.CreateManyAsync(
            Enumerable.Range(0, 25).Select(i => new Customer { Name = $"C{i}", Tags = i % 2 == 0 ? ["even"] : ["odd"] }));
        var evens = created.Where((_, i) => i % 2 == 0).Select(c => c.Id).ToList();

        var pages = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await engine.Store.Customers.FindAsync(IndexedField.Tag, "even", limit: 5, afterId: after);
            if (page.Count == 0)
            {
                break;
            }

            Assert.True(page.Count <= 5);
            pages.AddRange(page.Select(p => p.Id));
            after = page[^1].Id;
        }

        Assert.Equal(evens, pages);

        var listed = new List<string>();
        after = null;
        IReadOnlyList<Customer> chunk;
        while ((chunk = await engine.Store.Customers.ListAsync(limit: 10, afterId: after)).Count > 0)
        {
            listed.AddRange(chunk.Select(c => c.Id));
            after = chunk[^1].Id;
        }

        Assert.Equal(created.Select(c => c.Id), listed);
        Assert.Equal(25, await engine.Store.Customers.CountAsync());
    }

    public sealed class Lead : Entity
    {
        public string Title { get; set; } = "";
        public decimal Value { get; set; }
    }

    [Fact]
    public async Task Plugin_collections_are_named_under_the_plugin_and_go_through_the_pipeline()
    {
        using var engine = new TestEngine();
        var store = engine.Provider.ForActor("plugin:crm.sales", "crm.sales");
        var seen = new List<string>();
        using var _ = engine.On<Lead>("crm.sales", PipelineStage.PostOperation, (e, _) =>
        {
            seen.Add(e.Entity + ":" + e.After!.Title);
            return Task.CompletedTask;
        }, entity: "crm.sales_leads");

        var leads = store.Collection<Lead>("leads");
        Assert.Equal("crm.sales_leads", leads.EntityName);
        var lead = await leads.CreateAsync(new Lead { Title = "Big deal", Value = 1000.5m });

        Assert.Equal(["crm.sales_leads:Big deal"], seen);
        Assert.Equal(1000.5m, (await leads.GetAsync(lead.Id))!.Value);
        var change = Assert.Single(await store.Changes.ReadAsync(0));
        Assert.Equal(("crm.sales_leads", "plugin:crm.sales"), (change.Entity, change.Actor));
        Assert.Contains("crm_dsales__leads", engine.Database.Database.GetCollectionNames());

        // Another plugin's collection of the same name is a different collection.
        var other = engine.Provider.ForActor("plugin:marketing", "marketing").Collection<Lead>("leads");
        Assert.Equal(0, await other.CountAsync());

        Assert.Throws<InvalidOperationException>(() => engine.Store.Collection<Lead>("leads"));
        Assert.Throws<ArgumentException>(() => store.Collection<Lead>("bad name!"));
    }
}
