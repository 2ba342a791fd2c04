namespace CrmEngine.Templates.Tests;

/// <summary>Saving a template re-parses it; a broken save is refused with file:line:column and the previous version stays.</summary>
public sealed class HotReloadTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTemplates _folder = new();

    public void Dispose() => _folder.Dispose();

    private static void Eventually(Func<bool> condition, Func<string> describe)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("not reached in time: " + describe());
            }

            Thread.Sleep(50);
        }
    }

    [Fact]
    public void Saving_a_template_reloads_it_and_a_broken_save_keeps_the_previous_version()
    {
        _folder.WriteTemplate("note", "Hi", "<p>version one {{ customer.name }}</p>", "one");
        var logger = new ListLogger<MailTemplates>();
        // Version checks far apart: only the file watcher can make the change visible within the test.
        using var templates = new MailTemplates(_folder.Directory, new TemplatesOptions { ReloadDebounce = TimeSpan.FromMilliseconds(50), VersionCheckInterval = TimeSpan.FromHours(1) }, logger);
        Assert.Empty(templates.LoadAll());
        templates.Watch();
        Assert.Equal("<p>version one Ana</p>", templates.Render("note", Samples.Sparse()).Html);

        _folder.Write("note.html", "<p>version two, {{ customer.name }}</p>");
        Eventually(() => templates.Render("note", Samples.Sparse()).Html == "<p>version two, Ana</p>", () => templates.Render("note", Samples.Sparse()).Html);

        _folder.Write("note.html", "<p>broken\n  {{ if customer.name }} never closed</p>");
        Eventually(() => templates.RefusedFiles.ContainsKey("templates/note.html"), () => string.Join(" | ", logger.Lines));
        var problem = templates.RefusedFiles["templates/note.html"];
        Assert.Equal(2, problem.Line);
        Assert.True(problem.Column > 0);
        Assert.Contains(logger.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains("templates/note.html:2:", StringComparison.Ordinal)
                                             && l.Contains("previous version stays in use", StringComparison.Ordinal));
        Assert.Equal("<p>version two, Ana</p>", templates.Render("note", Samples.Sparse()).Html);

        _folder.Write("note.html", "<p>version three</p>");
        Eventually(() => templates.Render("note", Samples.Sparse()).Html == "<p>version three</p>", () => string.Join(" | ", logger.Lines));
        Eventually(() => templates.RefusedFiles.Count == 0, () => string.Join(",", templates.RefusedFiles.Keys));
    }

    [Fact]
    public void Partials_and_layouts_reload_too()
    {
        _folder.WriteTemplate("note", "Hi", "{{ layout = 'frame' }}{{ include 'part' }}", "t");
        _folder.Write("_layouts/frame.html", "[{{ content }}]");
        _folder.Write("_partials/part.html", "a");
        using var templates = new MailTemplates(_folder.Directory, new TemplatesOptions { ReloadDebounce = TimeSpan.FromMilliseconds(50), VersionCheckInterval = TimeSpan.FromHours(1) });
        templates.Watch();
        Assert.Equal("[a]", templates.Render("note", Samples.Sparse()).Html);
        _folder.Write("_partials/part.html", "bb");
        _folder.Write("_layouts/frame.html", "<{{ content }}>");
        Eventually(() => templates.Render("note", Samples.Sparse()).Html == "<bb>", () => templates.Render("note", Samples.Sparse()).Html);
    }

    [Fact]
    public void Without_file_events_the_version_check_finds_a_changed_file()
    {
        _folder.WriteTemplate("note", "Hi", "one", "t");
        using var templates = new MailTemplates(_folder.Directory, new TemplatesOptions { VersionCheckInterval = TimeSpan.Zero });
        Assert.Equal("one", templates.Render("note", Samples.Sparse()).Html);
        _folder.Write("note.html", "second");
        Assert.Equal("second", templates.Render("note", Samples.Sparse()).Html);
    }

    [Fact]
    public void A_template_broken_from_the_start_is_refused_with_its_position()
    {
        _folder.WriteTemplate("bad", "Hi", "line one\n{{ for x in }}", "t");
        using var templates = new MailTemplates(_folder.Directory);
        var problems = templates.LoadAll();
        var problem = Assert.Single(problems);
        Assert.Equal("templates/bad.html", problem.File);
        Assert.Equal(2, problem.Line);
        var error = Assert.Throws<TemplateRenderException>(() => templates.Render("bad", Samples.Sparse()));
        Assert.Equal("templates/bad.html", error.File);
        Assert.Equal(2, error.Line);
        Assert.StartsWith("templates/bad.html:2:", error.Message, StringComparison.Ordinal);
    }
}
