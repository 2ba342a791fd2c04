using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.DataExchange.Csv;
using CsvHelper;

namespace CrmEngine.DataExchange.Tests;

public sealed class ImportTests
{
    private static string Copy(Engine engine, string sample)
    {
        var target = engine.File(sample);
        File.Copy(Engine.RepoFile("samples", "csv", sample), target);
        return target;
    }

    private static List<string[]> ReadCsv(string path)
    {
        using var reader = CsvReader.FromFile(path);
        var rows = new List<string[]>();
        reader.ReadHeader();
        rows.Add(reader.Headers.ToArray());
        while (reader.Read())
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).Select(reader.GetString).ToArray());
        }

        return rows;
    }

    [Fact]
    public async Task Messy_file_imports_good_rows_and_writes_bad_ones_to_the_reject_file_with_line_column_and_reason()
    {
        await using var engine = await Engine.StartAsync();
        var file = Copy(engine, "customers-messy.csv");

        var summary = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest());

        Assert.Equal(9, summary.Rows);
        Assert.Equal(5, summary.Created);
        Assert.Equal(4, summary.Rejected);
        var customers = await engine.AllCustomersAsync();
        Assert.Equal(5, customers.Count);

        var mueller = customers.Single(c => c.ExternalIds["erp"] == "C1001");
        Assert.Equal("Müller & Söhne, GmbH", mueller.Name);
        Assert.Equal(["info@mueller-soehne.de"], mueller.Emails);
        Assert.Equal(["b2b", "key"], mueller.Tags);
        Assert.Equal(5000.50m, mueller.CreditLimit);
        Assert.Equal(CustomerStatus.Existing, mueller.Status);
        Assert.Equal("Berlin", mueller.Addresses.Single().City);

        var cafe = customers.Single(c => c.ExternalIds["erp"] == "C1002");
        Assert.Equal("Café \"Zur Post\"", cafe.Name);
        Assert.Equal("Line one\r\nline two", cafe.Addresses.Single().Line1!.Replace("\r\n", "\n").Replace("\n", "\r\n"));
        Assert.Contains(customers, c => c.Name == "北京贸易有限公司" && c.Addresses.Single().City == "北京");
        Assert.Contains(customers, c => c.Name == "Ærøskøbing Handel ApS");
        Assert.Contains(customers, c => c.Name == "José Núñez");

        var rejects = ReadCsv(file + ".rejects.csv");
        Assert.Equal(["line", "column", "reason", "name", "emails"], rejects[0].Take(5));
        var byName = rejects.Skip(1).ToDictionary(r => r[3]);
        Assert.Equal("8", byName["Bad Mail Ltd"][0]);
        Assert.Equal("emails", byName["Bad Mail Ltd"][1]);
        Assert.Contains("'not-an-email' is not a valid e-mail address", byName["Bad Mail Ltd"][2]);
        Assert.Equal("9", byName["Unknown Status Inc"][0]);
        Assert.Equal("status", byName["Unknown Status Inc"][1]);
        Assert.Contains("'Sleeping' is not one of: Potential, Existing", byName["Unknown Status Inc"][2]);
        Assert.Equal("10", byName["Wrong Number AG"][0]);
        Assert.Equal("creditLimit", byName["Wrong Number AG"][1]);
        Assert.Contains("'1.234,50' is not a number", byName["Wrong Number AG"][2]);
        Assert.Equal("11", byName["Short Row Oy"][0]);
        Assert.Contains("missing phones", byName["Short Row Oy"][2]);
        // The original row follows the reason, field by field.
        Assert.Equal("not-an-email", byName["Bad Mail Ltd"][4]);
    }

    [Fact]
    public async Task Semicolon_file_with_a_mapping_file_reads_german_columns_typed_custom_fields_and_external_ids()
    {
        await using var engine = await Engine.StartAsync();
        var file = Copy(engine, "customers-semicolon.csv");

        var summary = await engine.Get<CustomerImporter>().ImportFileAsync(file,
            new ImportRequest { MappingPath = Engine.RepoFile("samples", "csv", "mapping-de.json") });

        Assert.Equal(2, summary.Created);
        Assert.Equal(1, summary.Rejected);
        var schmidt = (await engine.Store().Customers.FindAsync(IndexedField.ExternalId, "erp:K-1")).Single();
        Assert.Equal("Schmidt Bau GmbH", schmidt.Name);
        Assert.True(schmidt.Custom["vip"].Boolean);
        Assert.Equal(125000.00m, schmidt.Custom["revenue"].Number);
        Assert.Equal(new DateTimeOffset(2019, 4, 1, 0, 0, 0, TimeSpan.Zero), schmidt.Custom["since"].Date);
        Assert.Equal("12345", schmidt.Addresses.Single().PostalCode);
        var meier = (await engine.Store().Customers.FindAsync(IndexedField.ExternalId, "erp:K-2")).Single();
        Assert.Equal("Meier; Partner KG", meier.Name);
        Assert.Equal("Köln", meier.Addresses.Single().City);

        var reject = ReadCsv(file + ".rejects.csv")[1];
        Assert.Equal(["4", "VIP"], reject.Take(2));
        Assert.Contains("'vielleicht' is not true or false", reject[2]);
    }

    [Fact]
    public async Task A_mapping_with_an_unknown_field_stops_the_import_naming_the_mapping_file_column_and_field()
    {
        await using var engine = await Engine.StartAsync();
        var file = Copy(engine, "customers-semicolon.csv");

        var ex = await Assert.ThrowsAsync<MappingException>(() => engine.Get<CustomerImporter>().ImportFileAsync(file,
            new ImportRequest { MappingPath = Engine.RepoFile("samples", "csv", "mapping-unknown-field.json") }));

        Assert.Contains("mapping-unknown-field.json", ex.Message);
        Assert.Contains("column 'Fax' maps to unknown field 'faxNumber'", ex.Message);
        Assert.Equal(0, await engine.Store().Customers.CountAsync());
    }

    [Fact]
    public async Task A_mapped_column_missing_from_the_file_is_named_with_the_mapping()
    {
        await using var engine = await Engine.StartAsync();
        var file = engine.File("few-columns.csv");
        await File.WriteAllTextAsync(file, "Firma;E-Mail\nA GmbH;a@a.de\n");

        var ex = await Assert.ThrowsAsync<MappingException>(() => engine.Get<CustomerImporter>().ImportFileAsync(file,
            new ImportRequest { MappingPath = Engine.RepoFile("samples", "csv", "mapping-de.json") }));

        Assert.Contains("few-columns.csv: column 'Kundennr' named in mapping mapping-de.json is not in the header", ex.Message);
    }

    [Fact]
    public async Task Import_upserts_by_external_id_then_email_merging_values_and_writes_through_the_pipeline()
    {
        await using var engine = await Engine.StartAsync();
        var first = engine.File("first.csv");
        await File.WriteAllTextAsync(first, "name,emails,phones,tags,externalId.erp,address.city\nAcme,sales@acme.test,+1 555 0100,lead,A1,Springfield\nGlobex,info@globex.test,,,,\n");
        await engine.Get<CustomerImporter>().ImportFileAsync(first, new ImportRequest { User = "alice" });
        var second = engine.File("second.csv");
        await File.WriteAllTextAsync(second, "externalId.erp,emails,tags,owner\nA1,support@acme.test,vip,rep-7\n,INFO@globex.test,,rep-9\n");

        var summary = await engine.Get<CustomerImporter>().ImportFileAsync(second, new ImportRequest { User = "alice" });

        Assert.Equal((0L, 2L), (summary.Created, summary.Updated));
        var all = await engine.AllCustomersAsync();
        Assert.Equal(2, all.Count);
        var acme = all.Single(c => c.Name == "Acme");
        Assert.Equal(["sales@acme.test", "support@acme.test"], acme.Emails);
        Assert.Equal(["lead", "vip"], acme.Tags);
        Assert.Equal("rep-7", acme.Owner);
        Assert.Equal("Springfield", acme.Addresses.Single().City);
        Assert.Equal("rep-9", all.Single(c => c.Name == "Globex").Owner);

        var history = await engine.Store().Audit.ForEntityAsync(EntityNames.Customer, acme.Id);
        Assert.Equal([ChangeOperation.Create, ChangeOperation.Update], history.Select(h => h.Operation));
        Assert.All(history, h => Assert.Equal("import:alice", h.Actor));
        var changes = await engine.Store().Changes.ReadAsync(0);
        Assert.Equal(4, changes.Count(c => c.Entity == EntityNames.Customer));

        // The same file again changes nothing.
        var again = await engine.Get<CustomerImporter>().ImportFileAsync(second, new ImportRequest { User = "alice" });
        Assert.Equal((0L, 0L, 2L), (again.Created, again.Updated, again.Unchanged));
    }

    [Fact]
    public async Task An_interrupted_import_run_again_creates_no_duplicates()
    {
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:ImportBatchSize"] = "100" });
        var file = engine.File("many.csv");
        var lines = new List<string> { "name,emails,phones,address.postalCode" };
        for (var i = 0; i < 1500; i++)
        {
            // Every third row has no e-mail: it is found again by its content id.
            lines.Add(i % 3 == 0 ? $"Keyless {i},,+1 555 {i:D6},{10000 + i}" : $"Customer {i},c{i}@example.test,,{10000 + i}");
        }

        await File.WriteAllLinesAsync(file, lines);
        using var cts = new CancellationTokenSource();
        var progress = new CancelAfter(cts, 5);

        var first = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest(), progress, cts.Token);

        Assert.True(first.Cancelled);
        var partial = await engine.Store().Customers.CountAsync();
        Assert.InRange(partial, 1, 1499);

        var second = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest());

        Assert.False(second.Cancelled);
        Assert.Equal(1500, await engine.Store().Customers.CountAsync());
        Assert.Equal(1500 - partial, second.Created);
        Assert.Equal(0, second.Rejected);
    }

    [Fact]
    public async Task Rows_that_update_customers_of_the_batch_still_being_written_update_them_instead_of_creating_twice()
    {
        // Batches of 50: while one batch is written the next is read and looked up; rows 200-259 name customers of the
        // two batches before (140-199), one of which is still being written when they are looked up.
        await using var engine = await Engine.StartAsync(new() { ["DataExchange:ImportBatchSize"] = "50" });
        var file = engine.File("again.csv");
        var lines = new List<string> { "name,emails,tags" };
        lines.AddRange(Enumerable.Range(0, 200).Select(i => $"Customer {i},c{i}@example.test,new"));
        lines.AddRange(Enumerable.Range(200, 60).Select(i => $",c{i - 60}@example.test,again"));
        await File.WriteAllLinesAsync(file, lines);

        var summary = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest());

        Assert.Equal((260L, 200L, 60L, 0L), (summary.Rows, summary.Created, summary.Updated, summary.Rejected));
        var all = await engine.AllCustomersAsync();
        Assert.Equal(200, all.Count);
        Assert.Equal(60, all.Count(c => c.Tags.Contains("again")));
        Assert.All(all.Where(c => c.Tags.Contains("again")), c => Assert.InRange(int.Parse(c.Name[9..], System.Globalization.CultureInfo.InvariantCulture), 140, 199));
        Assert.Equal(260, (await engine.Store().Changes.ReadAsync(0, 1000)).Count(c => c.Entity == EntityNames.Customer));

        // Into a store that already holds them (its keys are read once at the start): nothing new, nothing twice.
        var again = await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest());
        Assert.Equal((0L, 0L), (again.Created, again.Rejected));
        Assert.Equal(200, await engine.Store().Customers.CountAsync());
    }

    /// <summary>Cancels the import once it has reported a number of batches (the work of the batches stays).</summary>
    private sealed class CancelAfter(CancellationTokenSource cts, int reports) : IProgress<ImportProgress>
    {
        private int _seen;

        public void Report(ImportProgress value)
        {
            if (++_seen == reports)
            {
                cts.Cancel();
            }
        }
    }

    [Fact]
    public async Task Export_writes_what_import_reads_back_into_an_empty_store_as_the_same_cards()
    {
        await using var engine = await Engine.StartAsync();
        var file = Copy(engine, "customers-messy.csv");
        await engine.Get<CustomerImporter>().ImportFileAsync(file, new ImportRequest());
        var store = engine.Store();
        var mueller = (await store.Customers.FindAsync(IndexedField.ExternalId, "erp:C1001")).Single();
        mueller.Contacts.Add(new ContactPerson { Id = "p1", Name = "Anna Müller", Email = "anna@mueller-soehne.de", Birthday = new DateOnly(1980, 2, 29), Primary = true });
        mueller.Addresses.Add(new Address { Kind = AddressKind.Billing, Line1 = "Postfach 12", PostalCode = "10001", City = "Berlin" });
        mueller.Custom["vip"] = CustomValue.Of(true);
        mueller.Custom["since"] = CustomValue.Of(new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.FromHours(1)));
        mueller.Profile.Birthday = new DateOnly(1970, 1, 1);
        mueller.Profile.Interests = ["wood", "steel"];
        await store.Customers.UpdateAsync(mueller);
        var exportFile = engine.File("export.csv");

        var exported = await engine.Get<CustomerExporter>().ExportFileAsync(exportFile);

        Assert.Equal(5, exported.Customers);
        await using var empty = await Engine.StartAsync();
        var summary = await empty.Get<CustomerImporter>().ImportFileAsync(exportFile, new ImportRequest());
        Assert.Equal((5L, 0L), (summary.Created, summary.Rejected));
        var before = (await engine.AllCustomersAsync()).Select(Comparable).ToList();
        var after = (await empty.AllCustomersAsync()).Select(Comparable).ToList();
        for (var i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i], after[i]);
        }
    }

    private static string Comparable(Customer c)
    {
        c.Version = 0;
        c.CreatedAt = c.UpdatedAt = default;
        // A dictionary's order is not data.
        c.Custom = new Dictionary<string, CustomValue>(c.Custom.OrderBy(p => p.Key, StringComparer.Ordinal), StringComparer.Ordinal);
        c.ExternalIds = new Dictionary<string, string>(c.ExternalIds.OrderBy(p => p.Key, StringComparer.Ordinal), StringComparer.Ordinal);
        return System.Text.Json.JsonSerializer.Serialize(c);
    }
}
