"""The example site's forms."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    email = forms.EmailField(label="Email", help_text="Receipts and billing emails go here.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class ProjectForm(forms.Form):
    name = forms.CharField(label="Project name", max_length=100)
