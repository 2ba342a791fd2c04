using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>crm import/export customers, crm duplicates scan, crm customers merge|erase|export with the real process.</summary>
public sealed class DataCommandTests(ITestOutputHelper output)
{
    private static string Sample(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CrmEngine.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"), "samples", "csv", name);
    }

    [Fact]
    public async Task Import_export_scan_merge_erase_and_customer_export_work_from_the_command_line()
    {
        using var root = new TestRoot();
        var csv = root.File_("messy.csv");
        File.Copy(Sample("customers-messy.csv"), csv);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", csv);
        Assert.Equal(0, code);
        Assert.Contains("9 rows, 5 created, 0 updated, 0 unchanged, 4 rejected", text, StringComparison.Ordinal);
        Assert.Contains(csv + ".rejects.csv", text, StringComparison.Ordinal);
        Assert.Equal(5, File.ReadAllLines(csv + ".rejects.csv").Length);

        // The same file again: found, nothing new.
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", csv);
        Assert.Equal(0, code);
        Assert.Contains("0 created, 0 updated, 5 unchanged, 4 rejected", text, StringComparison.Ordinal);

        var exported = root.File_("out.csv");
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "export", "customers", exported);
        Assert.Equal(0, code);
        Assert.Contains("5 customers written", text, StringComparison.Ordinal);
        // Records start with the id (32 hex digits); a quoted address holds a line break, so lines are not records.
        var ids = File.ReadAllLines(exported).Skip(1).Select(l => l.Split(',')[0])
            .Where(id => id.Length == 32 && id.All(char.IsAsciiHexDigitLower)).ToList();
        Assert.Equal(5, ids.Count);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "duplicates", "scan", "--out", root.File_("groups.csv"));
        Assert.Equal(0, code);
        Assert.Contains("5 customers scanned: 0 duplicate groups", text, StringComparison.Ordinal);

        // Both cards have an ERP id: refused without --force, the kept id wins with it.
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "customers", "merge", ids[0], ids[1]);
        Assert.Equal(1, code);
        Assert.Contains("external id erp: C1001 vs C1002", text, StringComparison.Ordinal);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "customers", "merge", ids[0], ids[1], "--force");
        Assert.Equal(0, code);
        Assert.Contains($"{ids[1]} now redirects to {ids[0]}", text, StringComparison.Ordinal);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "customers", "merge", ids[0], ids[1]);
        Assert.Equal(0, code);
        Assert.Contains("already merged", text, StringComparison.Ordinal);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "customers", "erase", ids[0], "--reason", "request 42");
        Assert.Equal(0, code);
        Assert.Contains($"erased customer {ids[0]}", text, StringComparison.Ordinal);

        var json = root.File_("customer.json");
        (code, _) = await CrmProcess.RunAsync(root.Path, output, "customers", "export", ids[0], json);
        Assert.Equal(0, code);
        var content = File.ReadAllText(json);
        Assert.Contains("request 42", content, StringComparison.Ordinal);
        Assert.DoesNotContain("mueller-soehne", content, StringComparison.Ordinal);
        Assert.DoesNotContain("Zur Post", content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_import_on_a_stopped_engine_opens_no_api_listener()
    {
        // The API's address is taken by someone else: the service could not start its API there, but a data command
        // starts only the store side of the engine (no API, control channel, scheduler or mail sender) and works.
        using var root = new TestRoot();
        using var squatter = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((System.Net.IPEndPoint)squatter.LocalEndpoint).Port;
        var csv = root.File_("two.csv");
        File.WriteAllText(csv, "name,emails\nAcme,a@acme.test\nGlobex,g@globex.test\n");

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", csv, $"--Api:Urls=http://127.0.0.1:{port}");

        Assert.Equal(0, code);
        Assert.Contains("2 rows, 2 created", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_mapping_with_an_unknown_field_is_refused_naming_the_file_and_field()
    {
        using var root = new TestRoot();
        var csv = root.File_("semi.csv");
        File.Copy(Sample("customers-semicolon.csv"), csv);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", csv, "--mapping", Sample("mapping-unknown-field.json"));

        Assert.Equal(1, code);
        Assert.Contains("mapping-unknown-field.json: column 'Fax' maps to unknown field 'faxNumber'", text, StringComparison.Ordinal);
        Assert.False(File.Exists(csv + ".rejects.csv"));
    }
}
