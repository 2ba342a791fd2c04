using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Duplicates;

namespace CrmEngine.DataExchange.Tests;

/// <summary>
/// Rows of one import that duplicate each other by phone or by a similar name at the same postcode, before any of them
/// is stored: the store look-ups cannot see them, so the importer checks the rows of the batch (and of the batch being
/// written) itself, with the same rule actions as against stored customers.
/// </summary>
public sealed class ImportBatchDuplicateTests
{
    private const string Header = "name,emails,phones,externalId.erp,address.postalCode,address.city";

    private static async Task<ImportSummary> ImportAsync(Engine engine, params string[] rows)
    {
        var file = engine.File("batch-" + Guid.NewGuid().ToString("N")[..6] + ".csv");
        await File.WriteAllLinesAsync(file, [Header, .. rows]);
        return await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest { User = "test" });
    }

    private static string[] Rows(int filler) =>
    [
        "Schmidt Bau GmbH,info@schmidt.test,+49 30 1111,E1,10115,Berlin",
        // same phone, other name and e-mail
        "Nordlicht Handel,kontakt@nordlicht.test,+49 (30) 1111,E2,20095,Hamburg",
        // two letters swapped, same postcode
        "Schmdit Bau GmbH,office@schmdit.test,+49 40 2222,E3,10115,Berlin",
        // similar name at another postcode: not a duplicate
        "Schmidt Bau GmbH,bau@other.test,+49 89 3333,E4,80331,München",
        .. Enumerable.Range(0, filler).Select(i => $"Filler {i:D3} Logistik,f{i}@filler.test,+49 511 {100000 + i},F{i},{30000 + i},Hannover"),
    ];

    [Theory]
    [InlineData("5000")] // all rows in one batch
    [InlineData("2")] // the duplicates in the batch after their original, which may still be writing
    public async Task Rows_of_one_import_are_tagged_as_possible_duplicates_of_each_other_by_phone_and_similar_name(string batchSize)
    {
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:ImportBatchSize"] = batchSize });

        var summary = await ImportAsync(engine, Rows(0));

        Assert.Equal(4, summary.Created);
        var all = (await engine.AllCustomersAsync()).ToDictionary(c => c.ExternalIds["erp"]);
        var original = all["E1"];
        Assert.DoesNotContain(DuplicateGuard.Tag, original.Tags);
        Assert.Contains(DuplicateGuard.Tag, all["E2"].Tags);
        Assert.Equal(original.Id, all["E2"].Custom[DuplicateGuard.OtherField].Text);
        Assert.Contains(DuplicateGuard.Tag, all["E3"].Tags);
        Assert.Equal(original.Id, all["E3"].Custom[DuplicateGuard.OtherField].Text);
        Assert.DoesNotContain(DuplicateGuard.Tag, all["E4"].Tags);
    }

    [Fact]
    public async Task A_row_duplicating_a_stored_customer_is_tagged_too()
    {
        await using var engine = await Engine.StartAsync();
        var stored = await engine.Store().Customers.CreateAsync(new Customer { Name = "Kranbau Ost", Phones = ["+49 341 5555"] });

        var summary = await ImportAsync(engine, "Anders Kranbau,anders@kran.test,+49 341 5555,K1,04109,Leipzig");

        Assert.Equal(1, summary.Created);
        var row = (await engine.Store().Customers.FindAsync(IndexedField.ExternalId, "erp:K1")).Single();
        Assert.Contains(DuplicateGuard.Tag, row.Tags);
        Assert.Equal(stored.Id, row.Custom[DuplicateGuard.OtherField].Text);
    }

    [Theory]
    [InlineData("5000")]
    [InlineData("1")] // every row its own batch: the original may still be writing when its duplicate is checked
    public async Task With_the_block_action_a_row_duplicating_an_earlier_row_is_rejected_naming_it(string batchSize)
    {
        await using var engine = await Engine.StartAsync(new()
        {
            ["DataExchange:ImportBatchSize"] = batchSize,
            ["DataExchange:Duplicates:Phone"] = "Block",
            ["DataExchange:Duplicates:Name"] = "Block",
        });

        var summary = await ImportAsync(engine, Rows(3));

        Assert.Equal(5, summary.Created); // E1, E4 and the three fillers
        Assert.Equal(2, summary.Rejected);
        var all = (await engine.AllCustomersAsync()).ToDictionary(c => c.ExternalIds["erp"]);
        Assert.False(all.ContainsKey("E2"));
        Assert.False(all.ContainsKey("E3"));
        var original = all["E1"];
        Assert.Contains(summary.FirstRejects, r => r.Line == 3 && r.Column == "phones" && r.Reason.Contains($"duplicate of customer {original.Id}", StringComparison.Ordinal));
        Assert.Contains(summary.FirstRejects, r => r.Line == 4 && r.Column == "name" && r.Reason.Contains($"duplicate of customer {original.Id}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_the_merge_action_a_row_like_an_earlier_row_of_the_batch_goes_into_that_customer()
    {
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:Duplicates:Name"] = "Merge" });

        // No external ids: the second row (misspelt, same postcode, a second e-mail) merges into the first.
        var file = engine.File("merge.csv");
        await File.WriteAllLinesAsync(file,
        [
            "name,emails,phones,address.postalCode,address.city",
            "Weber Metall KG,info@weber.test,,70173,Stuttgart",
            "Wbeer Metall KG,,+49 711 4444,70173,Stuttgart",
        ]);
        var summary = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest { User = "test" });

        Assert.Equal(1, summary.Created);
        var only = Assert.Single(await engine.AllCustomersAsync());
        Assert.Equal(["info@weber.test"], only.Emails);
        Assert.Equal(["+49 711 4444"], only.Phones);
    }
}
