namespace CrmEngine.PluginHost.Tests;

public class ManifestTests
{
    private const string File = "/plugins/acme/plugin.json";

    private const string Valid = """
        {
          "id": "acme.loyalty",
          "name": "Acme loyalty",
          "version": "2.1.0",
          "sdk": { "min": "1.0.0", "max": "1" },
          "dependencies": [ { "id": "crm.sales", "min": "1.2", "max": "1" }, { "id": "crm.marketing" } ],
          "entryAssembly": "Acme.Loyalty.dll"
        }
        """;

    [Fact]
    public void Reads_every_field()
    {
        var m = PluginManifestReader.Parse(Valid, File);
        Assert.Equal("acme.loyalty", m.Id);
        Assert.Equal("Acme loyalty", m.Name);
        Assert.Equal("2.1.0", m.Version.ToString());
        Assert.True(m.Sdk.Contains(SemVersion.Parse("1.4.0")));
        Assert.False(m.Sdk.Contains(SemVersion.Parse("2.0.0")));
        Assert.Equal(["crm.sales", "crm.marketing"], m.Dependencies.Select(d => d.Id));
        Assert.True(m.Dependencies[0].Range.Contains(SemVersion.Parse("1.3.0")));
        Assert.False(m.Dependencies[0].Range.Contains(SemVersion.Parse("1.1.0")));
        Assert.True(m.Dependencies[1].Range.Contains(SemVersion.Parse("7.0.0")));
        Assert.Equal("Acme.Loyalty.dll", m.EntryAssembly);
    }

    [Theory]
    [InlineData("\"id\": \"acme.loyalty\",", "", "field 'id' is required")]
    [InlineData("\"acme.loyalty\"", "\"acme loyalty!\"", "field 'id' 'acme loyalty!' is not a valid plugin id")]
    [InlineData("\"2.1.0\"", "\"2.1\"", "field 'version' '2.1' is not a version")]
    [InlineData("\"2.1.0\"", "2", "field 'version' must be a string, found number")]
    [InlineData("\"sdk\": { \"min\": \"1.0.0\", \"max\": \"1\" },", "", "field 'sdk' is required")]
    [InlineData("\"max\": \"1\" }", "\"max\": null }", "field 'sdk.max' is required")]
    [InlineData("\"min\": \"1.0.0\", \"max\": \"1\"", "\"min\": \"3.0.0\", \"max\": \"1\"", "field 'sdk' min 3.0.0 is above max 1")]
    [InlineData("\"min\": \"1.2\", \"max\": \"1\" }", "\"min\": \"x\", \"max\": \"1\" }", "field 'dependencies[0]' min: 'x' is not a version")]
    [InlineData("{ \"id\": \"crm.marketing\" }", "{ \"name\": \"crm.marketing\" }", "field 'dependencies[1].id' is required")]
    [InlineData("{ \"id\": \"crm.marketing\" }", "{ \"id\": \"acme.loyalty\" }", "field 'dependencies[1].id' a plugin cannot depend on itself")]
    [InlineData("\"Acme.Loyalty.dll\"", "\"../evil.dll\"", "field 'entryAssembly' '../evil.dll' must be the file name of a .dll")]
    [InlineData("\"Acme.Loyalty.dll\"", "\"Acme.Loyalty\"", "field 'entryAssembly'")]
    public void Problems_name_the_file_and_the_field(string find, string replace, string expected)
    {
        var json = Valid.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(Valid, json);
        var ex = Assert.Throws<PluginManifestException>(() => PluginManifestReader.Parse(json, File));
        Assert.StartsWith(File + ": ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_json_names_the_line()
    {
        var ex = Assert.Throws<PluginManifestException>(() => PluginManifestReader.Parse("{\n  \"id\": \"a\",\n  \"version\" \"1.0.0\"\n}", File));
        Assert.Contains(File + ": not valid JSON (line 3", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_that_is_not_an_object_is_refused()
    {
        var ex = Assert.Throws<PluginManifestException>(() => PluginManifestReader.Parse("[1]", File));
        Assert.Contains("must be a JSON object", ex.Message, StringComparison.Ordinal);
    }
}
