using CrmEngine.Abstractions.Model;
using CrmEngine.DataExchange.Duplicates;

namespace CrmEngine.DataExchange.Tests;

/// <summary>
/// The fuzzy-name rule for cards without a postcode: candidates are the customers whose stored name starts with the same
/// three letters (the store's name look-up, read through Core's index reads), then compared at the same city.
/// </summary>
public sealed class NameCandidateTests
{
    private static Customer At(string name, string city) => new() { Name = name, Addresses = [new Address { City = city }] };

    [Fact]
    public async Task A_similar_name_in_the_same_city_without_postcode_is_tagged_and_other_cities_or_names_are_not()
    {
        await using var engine = await Engine.StartAsync();
        var store = engine.Store();
        // Names that share the first letters but are no duplicates, and the one that is.
        await store.Customers.CreateAsync(At("Schwarz Druck", "Leipzig"));
        var first = await store.Customers.CreateAsync(At("  SCHULZ Metallbau GmbH", "Leipzig"));

        var similar = await store.Customers.CreateAsync(At("Schulz Metalbau", "leipzig"));
        Assert.Contains(DuplicateGuard.Tag, similar.Tags);
        Assert.Equal(first.Id, similar.Custom[DuplicateGuard.OtherField].Text);

        var elsewhere = await store.Customers.CreateAsync(At("Schulz Metalbau", "Dresden"));
        Assert.DoesNotContain(DuplicateGuard.Tag, elsewhere.Tags);
    }
}
