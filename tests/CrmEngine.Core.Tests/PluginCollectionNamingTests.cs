using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Core.Tests;

public class PluginCollectionNamingTests
{
    public sealed class Note : Entity
    {
        public string Text { get; set; } = "";
    }

    [Theory]
    [InlineData("a_b", "c", "a", "b_c")]
    [InlineData("a.b", "c", "a_b", "c")]
    [InlineData("a-b", "c", "a.b", "c")]
    [InlineData("a", "b.c", "a.b", "c")]
    [InlineData("ab", "c", "a", "bc")]
    [InlineData("1x", "c", "p1x", "c")]
    public void Different_plugin_and_collection_pairs_get_different_stored_names(string p1, string n1, string p2, string n2) =>
        Assert.NotEqual(CoreEntities.CollectionNameFor(p1, n1), CoreEntities.CollectionNameFor(p2, n2), StringComparer.OrdinalIgnoreCase);

    [Fact]
    public async Task Plugins_whose_names_used_to_collide_keep_their_documents_apart()
    {
        using var engine = new TestEngine();
        var dotted = engine.Provider.ForActor("plugin:a.b", "a.b").Collection<Note>("c");
        var underscored = engine.Provider.ForActor("plugin:a_b", "a_b").Collection<Note>("c");

        await dotted.CreateAsync(new Note { Text = "of a.b" });
        Assert.Equal(0, await underscored.CountAsync());
        Assert.Equal(1, await dotted.CountAsync());
    }

    [Fact]
    public void A_second_plugin_claiming_the_same_name_is_refused_with_both_owners_named()
    {
        using var engine = new TestEngine();
        engine.Provider.ForActor("plugin:a_b", "a_b").Collection<Note>("c");

        // Same entity name "a_b_c" (events, change feed, handlers) from another pair.
        var clash = Assert.Throws<StoreException>(() => engine.Provider.ForActor("plugin:a", "a").Collection<Note>("b_c"));
        Assert.Contains("'a'", clash.Message);
        Assert.Contains("'a_b'", clash.Message);

        // LiteDB compares collection names ignoring case.
        engine.Provider.ForActor("plugin:Shop", "Shop").Collection<Note>("notes");
        var caseClash = Assert.Throws<StoreException>(() => engine.Provider.ForActor("plugin:shop", "shop").Collection<Note>("notes"));
        Assert.Contains("'Shop'", caseClash.Message);

        // The owner itself may ask again.
        engine.Provider.ForActor("plugin:a_b", "a_b").Collection<Note>("c");
    }

    [Fact]
    public async Task A_collection_stored_under_the_first_releases_name_stays_in_use()
    {
        using var engine = new TestEngine();
        await engine.Database.WriteAsync(_ => engine.Database.Database.GetCollection("crm_sales_leads")
            .Insert(new BsonDocument { ["_id"] = "old", ["Text"] = "stored before", ["Version"] = 1L }));

        var leads = engine.Provider.ForActor("plugin:crm.sales", "crm.sales").Collection<Note>("leads");

        Assert.Equal(1, await leads.CountAsync());
    }
}
